from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pesan.bookings.enums import BookingMode, BookingStatus, LocationKind
from pesan.db import Base, UTCDateTime, one_of
from pesan.timeutil import utcnow


class Booking(Base):
    __tablename__ = "bookings"
    __table_args__ = (
        one_of("status", BookingStatus),
        one_of("mode", BookingMode),
        one_of("location_kind", LocationKind),
        CheckConstraint("end_at > start_at", name="ends_after_start"),
        CheckConstraint("price_amount >= 0", name="price"),
        Index("ix_bookings_customer_id_created_at", "customer_id", "created_at"),
        Index("ix_bookings_provider_id_created_at", "provider_id", "created_at"),
        Index("ix_bookings_provider_id_start_at", "provider_id", "start_at"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    mode: Mapped[str] = mapped_column(String(16))
    # The booker: a customer, or a hotel, villa or agent booking for a guest.
    customer_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    customer_name: Mapped[str] = mapped_column(String(100))
    booker_role: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    provider_name: Mapped[str] = mapped_column(String(100))
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"))
    service_name: Mapped[str] = mapped_column(String(100))
    duration_minutes: Mapped[int]
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    location_kind: Mapped[str] = mapped_column(String(16))
    location_address: Mapped[str | None] = mapped_column(Text)
    location_room: Mapped[str | None] = mapped_column(String(50))
    note: Mapped[str | None] = mapped_column(Text)
    guest_name: Mapped[str | None] = mapped_column(String(100))
    price_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    eta_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_reason: Mapped[str | None] = mapped_column(Text)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdempotencyKey(Base):
    """A Book Now request already answered: same key and body → the same booking."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    # Claimed before the booking row exists (so a concurrent retry waits on it): checked at commit.
    booking_id: Mapped[str] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE", deferrable=True, initially="DEFERRED")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
