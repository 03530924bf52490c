from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    func,
    literal,
    text,
)
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pesan.bookings.enums import (
    ACTIVE,
    PARTIES,
    Actor,
    BookingMode,
    BookingStatus,
    LocationKind,
    ProposalStatus,
)
from pesan.db import Base, UTCDateTime, one_of
from pesan.timeutil import utcnow

NO_OVERLAP = "ex_bookings_no_overlap"


class Booking(Base):
    __tablename__ = "bookings"
    __table_args__ = (
        one_of("status", BookingStatus),
        one_of("mode", BookingMode),
        one_of("location_kind", LocationKind),
        one_of("ended_by", Actor),
        one_of("counts_against", PARTIES),
        CheckConstraint("end_at > start_at", name="ends_after_start"),
        CheckConstraint(
            "blocked_from <= start_at AND blocked_until >= end_at", name="blocks_its_time"
        ),
        CheckConstraint("price_amount >= 0", name="price"),
        Index("ix_bookings_customer_id_created_at", "customer_id", "created_at"),
        Index("ix_bookings_provider_id_created_at", "provider_id", "created_at"),
        Index("ix_bookings_provider_id_start_at", "provider_id", "start_at"),
        Index("ix_bookings_provider_id_blocked_until", "provider_id", "blocked_until"),
        Index("ix_bookings_status_respond_by", "status", "respond_by"),
        Index("ix_bookings_status_start_at", "status", "start_at"),
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
    # The provider's IANA zone when booked: every time shown for this booking is in it.
    timezone: Mapped[str] = mapped_column(String(64))
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"))
    service_name: Mapped[str] = mapped_column(String(100))
    duration_minutes: Mapped[int]
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The provider's time this booking holds: its own, widened by the provider's buffers.
    blocked_from: Mapped[datetime] = mapped_column(UTCDateTime)
    blocked_until: Mapped[datetime] = mapped_column(UTCDateTime)
    location_kind: Mapped[str] = mapped_column(String(16))
    location_address: Mapped[str | None] = mapped_column(Text)
    location_room: Mapped[str | None] = mapped_column(String(50))
    note: Mapped[str | None] = mapped_column(Text)
    guest_name: Mapped[str | None] = mapped_column(String(100))
    price_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    respond_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    eta_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_reason: Mapped[str | None] = mapped_column(Text)
    # How it ended, by the one cancellation and lateness policy for both sides.
    ended_by: Mapped[str | None] = mapped_column(String(16))
    late_cancellation: Mapped[bool] = mapped_column(Boolean, default=False)
    counts_against: Mapped[str | None] = mapped_column(String(16))
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# PostgreSQL refuses two held bookings of one provider whose held times overlap, under any
# concurrency (SQLite serialises writers, and Book Now checks inside its write transaction).
Booking.__table__.append_constraint(  # type: ignore[attr-defined]
    ExcludeConstraint(
        (Booking.__table__.c.provider_id, "="),
        (
            func.tstzrange(
                Booking.__table__.c.blocked_from, Booking.__table__.c.blocked_until, literal("[)")
            ),
            "&&",
        ),
        name=NO_OVERLAP,
        using="gist",
        where=text("status IN ({})".format(", ".join(f"'{s.value}'" for s in sorted(ACTIVE)))),
    ).ddl_if(dialect="postgresql")
)


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


class RescheduleProposal(Base):
    """One party asks to move a booking; the other accepts (it moves) or declines."""

    __tablename__ = "reschedule_proposals"
    __table_args__ = (
        one_of("status", ProposalStatus),
        one_of("proposed_by", PARTIES),
        CheckConstraint("end_at > start_at", name="ends_after_start"),
        # At most one open proposal per booking.
        Index(
            "uq_reschedule_proposals_open",
            "booking_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    booking_id: Mapped[str] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    proposed_by: Mapped[str] = mapped_column(String(16))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[str | None] = mapped_column(String(26))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
