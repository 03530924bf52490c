from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from pesan.db import Base, UTCDateTime
from pesan.roles import Role, sql_in
from pesan.timeutil import utcnow

MESSAGE_TYPES = ("text", "image", "file", "booking", "system", "notification")
SENDER_TYPES = (*(r.value for r in Role), "system")


class Conversation(Base):
    """A 1:1 conversation; `pair_key` (both user ids, sorted) makes it unique per pair."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    pair_key: Mapped[str] = mapped_column(String(60), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_message_id: Mapped[str | None] = mapped_column(String(26))


class Participant(Base):
    __tablename__ = "conversation_participants"

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint(f"message_type IN ({sql_in(MESSAGE_TYPES)})", name="message_type"),
        CheckConstraint(f"sender_type IN ({sql_in(SENDER_TYPES)})", name="sender_type"),
        CheckConstraint(f"recipient_type IN ({sql_in(Role)})", name="recipient_type"),
        UniqueConstraint("sender_id", "client_message_id"),
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
        Index("ix_messages_unread", "recipient_id", "read", "conversation_id"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    # NULL for messages the system posts (booking status changes)
    sender_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    sender_name: Mapped[str] = mapped_column(String(100))
    sender_type: Mapped[str] = mapped_column(String(16))
    recipient_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    recipient_name: Mapped[str] = mapped_column(String(100))
    recipient_type: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    message_type: Mapped[str] = mapped_column(String(16), default="text")
    original_language: Mapped[str] = mapped_column(String(35), default="id")
    is_system_message: Mapped[bool] = mapped_column(Boolean, default=False)
    room_id: Mapped[str | None] = mapped_column(String(200))
    booking_id: Mapped[str | None] = mapped_column(ForeignKey("bookings.id"), index=True)
    read: Mapped[bool] = mapped_column(Boolean, default=False)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    session_id: Mapped[str | None] = mapped_column(String(200))
    client_message_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


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
