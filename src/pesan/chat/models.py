from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from pesan.chat.enums import MessageType, RecipientType, SenderType
from pesan.db import Base, UTCDateTime, one_of
from pesan.timeutil import utcnow


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
    # Messages to this user in this conversation not read yet: kept by every send and read,
    # so that neither counts them (migration 0003).
    unread_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        one_of("message_type", MessageType),
        one_of("sender_type", SenderType),
        one_of("recipient_type", RecipientType),
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
    # Structured content of a card the server posts (a reschedule proposal's id and times).
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
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
