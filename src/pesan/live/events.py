"""The outbox: durable per-user events, written in the transaction of the change they describe.

Use cases call `record(session, user_ids, type, data)`. Nothing is written until the
transaction commits: then every buffered event is numbered (per user, in user-id order so
two transactions never wait on each other in a cycle) and inserted, and once the commit has
succeeded the events are handed to the broker for live delivery.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from pesan.db import BEFORE_RELEASE, Prepared, after_commit, connection_of, table_of
from pesan.live.models import UserEvent, UserEventCounter
from pesan.timeutil import utcnow

EVENT_ID_WIDTH = 12


@dataclass(frozen=True)
class Event:
    user_id: str
    seq: int
    type: str
    data: dict[str, Any]

    @property
    def id(self) -> str:
        return format_event_id(self.seq)

    def frame(self) -> dict[str, Any]:
        return {"type": self.type, "id": self.id, "data": self.data}


def format_event_id(seq: int) -> str:
    """Zero-padded so that ids sort as strings in delivery order."""
    return f"{seq:0{EVENT_ID_WIDTH}d}"


def parse_event_id(value: object) -> int | None:
    """The number in an event id, or None if `value` is not one."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    if len(value) > 18:
        return None
    return int(value)


_counters, _events = table_of(UserEventCounter), table_of(UserEvent)
# Built once: the outbox is written by every change, so its statements are the hottest.
_RESERVE = Prepared(
    update(_counters)
    .where(_counters.c.user_id == bindparam("uid"))
    .values(last_seq=_counters.c.last_seq + bindparam("count"))
    .returning(_counters.c.last_seq)
)
_INSERT_EVENTS = Prepared(insert(_events))


def record(session: Session, user_ids: list[str], type: str, data: dict[str, Any]) -> None:
    """Buffer one event for each of `user_ids`; it is written when the transaction commits."""
    pending = session.info.setdefault("pending_events", [])
    for user_id in dict.fromkeys(user_ids):
        pending.append((user_id, type, data))


def create_counter(session: Session, user_id: str) -> None:
    session.add(UserEventCounter(user_id=user_id, last_seq=0))


@sa_event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    """Number and insert the events buffered so far: as a transaction or savepoint commits,
    or as a Core job of the group commit ends (`pesan.db.BEFORE_RELEASE`)."""
    pending: list[tuple[str, str, dict[str, Any]]] = session.info.pop("pending_events", [])
    if not pending:
        return
    by_user: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for user_id, type, data in pending:
        by_user.setdefault(user_id, []).append((type, data))
    written: list[Event] = []
    now = utcnow()
    connection = connection_of(session)
    for user_id in sorted(by_user):
        items = by_user[user_id]
        last = _reserve(session, connection, user_id, len(items))
        first = last - len(items) + 1
        written.extend(Event(user_id, first + i, t, d) for i, (t, d) in enumerate(items))
    rows = [
        {"user_id": e.user_id, "seq": e.seq, "type": e.type, "payload": e.data, "created_at": now}
        for e in written
    ]
    _INSERT_EVENTS.run_many(connection, rows)
    publish = session.info.get("publish")
    if publish is not None:
        after_commit(session, lambda: publish(written))


BEFORE_RELEASE.append(_write_pending)


def _reserve(session: Session, connection: Connection, user_id: str, count: int) -> int:
    """Take `count` numbers from the user's counter (locking its row) and return the last."""
    answered = _RESERVE.rows(connection, {"uid": user_id, "count": count})
    new_last = answered[0][0] if answered else None
    if new_last is None:  # a user made before counters existed
        create_counter(session, user_id)
        session.flush()
        return _reserve(session, connection, user_id, count)
    return int(new_last)


def events_after(session: Session, user_id: str, after_seq: int, limit: int) -> list[Event]:
    rows = session.scalars(
        select(UserEvent)
        .where(UserEvent.user_id == user_id, UserEvent.seq > after_seq)
        .order_by(UserEvent.seq)
        .limit(limit)
    ).all()
    return [Event(r.user_id, r.seq, r.type, r.payload) for r in rows]


def newest_event_id(session: Session, user_id: str) -> str:
    """The id of the user's newest event: a page rendered now resumes live events from it."""
    seq = session.scalar(
        select(UserEventCounter.last_seq).where(UserEventCounter.user_id == user_id)
    )
    return format_event_id(int(seq or 0))


def prune(session: Session, older_than: datetime) -> int:
    """Forget events past their retention; a client that needed them is told to resync."""
    result = session.execute(delete(UserEvent).where(UserEvent.created_at < older_than))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
