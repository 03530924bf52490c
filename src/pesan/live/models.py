"""The outbox tables: durable per-user events and the per-user counters that number them."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from pesan.db import Base, UTCDateTime
from pesan.timeutil import utcnow


class UserEvent(Base):
    """The outbox: one durable event for one user, numbered 1, 2, 3... per user.

    Written in the same transaction as the change it describes, so it exists if and only
    if the change committed. The per-user counter row is locked while numbering, so a
    user's events commit in number order and a client that saw N has seen all before N.
    """

    __tablename__ = "user_events"
    __table_args__ = (Index("ix_user_events_created_at", "created_at"),)

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserEventCounter(Base):
    __tablename__ = "user_event_counters"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
