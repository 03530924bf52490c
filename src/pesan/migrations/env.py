"""Alembic environment: runs on the connection `pesan.migrate` hands it (under its lock)."""

from typing import Any

from alembic import context
from sqlalchemy import create_engine

from pesan.db import UTCDateTime
from pesan.migrate import metadata


def _render_item(type_: str, obj: Any, autogen_context: Any) -> Any:
    # Migrations store plain timezone-aware timestamps; UTCDateTime is how the code reads them.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:  # plain `alembic` CLI use by developers
        from pesan.config import get_settings

        engine = create_engine(get_settings().resolved_database_url)
        with engine.begin() as conn:
            _migrate(conn)
        return
    _migrate(connection)


def _migrate(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=_render_item,
        compare_type=False,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
