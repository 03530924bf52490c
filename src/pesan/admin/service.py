"""The admin notification inbox."""

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from pesan.admin.models import AdminMessage
from pesan.admin.schemas import AdminMessageOut
from pesan.auth import Caller, ensure_role
from pesan.db import Prepared, connection_of, table_of
from pesan.ids import new_id
from pesan.paging import id_cursor, take_page
from pesan.roles import Role
from pesan.timeutil import utcnow

_INSERT = Prepared(insert(table_of(AdminMessage)))


def notify(
    session: Session,
    *,
    kind: str,
    title: str,
    body: str,
    booking_id: str | None = None,
    conversation_id: str | None = None,
) -> None:
    """One note in the inbox; a prepared Core insert, since Book Now writes one every time.
    Every column is given (Prepared applies no column defaults)."""
    _INSERT.run(
        connection_of(session),
        {
            "id": new_id(),
            "kind": kind,
            "title": title,
            "body": body,
            "booking_id": booking_id,
            "conversation_id": conversation_id,
            "created_at": utcnow(),
            "read_at": None,
        },
    )


def list_messages(
    session: Session, caller: Caller, limit: int, cursor: str | None
) -> tuple[list[AdminMessageOut], str | None]:
    """Newest first."""
    ensure_role(caller, [Role.admin], "read the admin inbox")
    query = select(AdminMessage).order_by(AdminMessage.id.desc()).limit(limit + 1)
    after = id_cursor(cursor)
    if after:
        query = query.where(AdminMessage.id < after)
    rows, next_cursor = take_page(session.scalars(query).all(), limit, lambda m: m.id)
    return [AdminMessageOut.model_validate(r, from_attributes=True) for r in rows], next_cursor
