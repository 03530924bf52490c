"""`db.Prepared` stores exactly what SQLAlchemy stores, and fails as SQLAlchemy fails."""

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import bindparam, insert, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError

from pesan import migrate
from pesan.accounts.service import create_user
from pesan.chat.models import Conversation, Message
from pesan.db import Database, Prepared, UTCDateTime, _bind_processor, table_of
from pesan.ids import new_id
from pesan.roles import Role

_messages = table_of(Message)


def _row(db: Database, **changes: object) -> dict[str, object]:
    with db.transaction() as session:
        a = create_user(
            session, email=f"{new_id()}@x.com", password_hash="x", name="A", role=Role.customer
        )
        b = create_user(
            session, email=f"{new_id()}@x.com", password_hash="x", name="B", role=Role.therapist
        )
        conversation = Conversation(id=new_id(), pair_key=new_id())
        session.add(conversation)
        session.flush()
        row: dict[str, object] = {
            "id": new_id(),
            "conversation_id": conversation.id,
            "sender_id": a.id,
            "sender_name": "A",
            "sender_type": Role.customer,
            "recipient_id": b.id,
            "recipient_name": "B",
            "recipient_type": Role.therapist,
            "content": "halo",
            "data": {"nested": [1, "dua"], "ok": True},
            "message_type": "text",
            "original_language": "id",
            "is_system_message": False,
            "room_id": None,
            "booking_id": None,
            "read": True,
            "read_at": datetime(2026, 11, 25, 9, 30, 15, 123456, tzinfo=UTC),
            "expires_at": None,
            "session_id": None,
            "client_message_id": "c-1",
            "created_at": datetime(2026, 11, 25, 9, 30, tzinfo=UTC),
        }
    return {**row, **changes}


def _stored(db: Database, message_id: object) -> dict[str, object]:
    """The values as stored (SQLite's own), not converted back by SQLAlchemy."""
    names = [c.name for c in _messages.columns]
    with db.engine.connect() as connection:
        row = connection.exec_driver_sql(
            f"SELECT {', '.join(names)} FROM messages WHERE id = ?", (message_id,)
        ).one()
    return dict(zip(names, row, strict=True))


def test_a_prepared_insert_stores_what_sqlalchemy_stores(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'p.sqlite3'}")
    migrate.upgrade(db.engine)
    try:
        ours, theirs = _row(db, client_message_id="ours"), _row(db, client_message_id="theirs")
        with db.transaction() as session:
            Prepared(insert(_messages)).run(session.connection(), ours)
            session.connection().execute(insert(_messages), theirs)
        mine, sqlalchemys = _stored(db, ours["id"]), _stored(db, theirs["id"])
        different = {"id", "conversation_id", "sender_id", "recipient_id", "client_message_id"}
        for name in mine.keys() - different:
            assert mine[name] == sqlalchemys[name], name
        assert isinstance(mine["created_at"], str) and isinstance(mine["data"], str)
        with db.reader() as session:
            message = session.scalars(select(Message).where(Message.id == ours["id"])).one()
            assert message.read_at == ours["read_at"] and message.data == ours["data"]
    finally:
        db.dispose()


def test_a_prepared_statement_answers_rows_and_raises_sqlalchemys_errors(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'p.sqlite3'}")
    migrate.upgrade(db.engine)
    row = _row(db)
    returning = Prepared(insert(_messages).returning(_messages.c.id, _messages.c.content))
    try:
        with db.transaction() as session:
            assert returning.rows(session.connection(), row) == [(row["id"], "halo")]
        with pytest.raises(IntegrityError), db.transaction() as session:
            returning.rows(session.connection(), row)  # the same primary key
    finally:
        db.dispose()


def test_a_prepared_select_answers_values_as_sqlalchemy_reads_them(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'p.sqlite3'}")
    migrate.upgrade(db.engine)
    row = _row(db)
    by_id = select(_messages.c.read_at, _messages.c.data, _messages.c.read).where(
        _messages.c.id == bindparam("mid")
    )
    try:
        with db.transaction() as session:
            session.connection().execute(insert(_messages), row)
        with db.transaction() as session:
            ours = Prepared(by_id).rows(session.connection(), {"mid": row["id"]})
            theirs = session.connection().execute(by_id, {"mid": row["id"]}).all()
        assert ours == [tuple(theirs[0])] == [(row["read_at"], row["data"], True)]
    finally:
        db.dispose()


@pytest.mark.parametrize(
    "value",
    [
        None,
        datetime(2026, 11, 25, 9, 30, tzinfo=UTC),
        datetime(2026, 11, 25, 9, 30, 15, 123456, tzinfo=UTC),
        datetime(2026, 11, 25, 1, 30, tzinfo=timezone(timedelta(hours=8))),  # the day before in UTC
        datetime(2026, 3, 29, 2, 30, 0, 1, tzinfo=ZoneInfo("Europe/Berlin")),
        datetime(2026, 11, 25, 9, 30),  # naive: taken as UTC
        datetime(1, 1, 1, 0, 0, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999),
    ],
)
def test_a_prepared_time_is_bound_as_sqlalchemy_binds_it(value: datetime | None) -> None:
    """Prepared binds UTCDateTime on SQLite with one function of its own."""
    dialect = sqlite.dialect()
    theirs = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    ours = _bind_processor(UTCDateTime(), dialect)
    assert ours is not None and theirs is not None
    assert ours(value) == theirs(value)
