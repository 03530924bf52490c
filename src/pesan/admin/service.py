"""The admin notification inbox."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from pesan.admin.models import AdminMessage
from pesan.admin.schemas import AdminMessageOut
from pesan.auth import Caller, ensure_role
from pesan.errors import ValidationFailed
from pesan.ids import is_valid, new_id
from pesan.roles import Role


def notify(
    session: Session,
    *,
    kind: str,
    title: str,
    body: str,
    booking_id: str | None = None,
    conversation_id: str | None = None,
) -> AdminMessage:
    message = AdminMessage(
        id=new_id(),
        kind=kind,
        title=title,
        body=body,
        booking_id=booking_id,
        conversation_id=conversation_id,
    )
    session.add(message)
    session.flush()
    return message


def list_messages(
    session: Session, caller: Caller, limit: int, cursor: str | None
) -> tuple[list[AdminMessageOut], str | None]:
    """Newest first."""
    ensure_role(caller, [Role.admin], "read the admin inbox")
    query = select(AdminMessage).order_by(AdminMessage.id.desc()).limit(limit + 1)
    if cursor:
        if not is_valid(cursor):
            raise ValidationFailed("cursor", "not a cursor this server made")
        query = query.where(AdminMessage.id < cursor)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    items = [AdminMessageOut.model_validate(r, from_attributes=True) for r in rows]
    return items, (rows[-1].id if more else None)
