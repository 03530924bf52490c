from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pesan.db import Base, UTCDateTime, one_of
from pesan.providers.enums import Presence, ProviderType
from pesan.providers.schedule import default_hours
from pesan.timeutil import utcnow

DEFAULT_TIMEZONE = "Asia/Makassar"  # Bali: UTC+8, no DST


class ProviderProfile(Base):
    """A therapist's or place's public profile; its id is the provider's user id."""

    __tablename__ = "provider_profiles"
    __table_args__ = (
        one_of("type", ProviderType),
        one_of("presence", Presence),
        CheckConstraint(
            "buffer_before_minutes BETWEEN 0 AND 240 AND buffer_after_minutes BETWEEN 0 AND 240",
            name="buffers",
        ),
        CheckConstraint("min_notice_minutes BETWEEN 0 AND 43200", name="notice"),
        CheckConstraint("horizon_days BETWEEN 1 AND 366", name="horizon"),
        CheckConstraint("slot_step_minutes BETWEEN 5 AND 240", name="slot_step"),
    )

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    type: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(100))
    bio: Mapped[str] = mapped_column(Text, default="")
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    timezone: Mapped[str] = mapped_column(String(64), default=DEFAULT_TIMEZONE)
    area: Mapped[str] = mapped_column(String(100), default="", index=True)
    presence: Mapped[str] = mapped_column(String(16), default="offline", index=True)
    busy_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The `now` booking that made the provider busy; when it ends they are available again.
    busy_with_booking: Mapped[str | None] = mapped_column(String(26))
    # The schedule: when `scheduled` bookings may start (see providers/schedule.py).
    weekly_hours: Mapped[dict[str, list[list[str]]]] = mapped_column(JSON, default=default_hours)
    days_off: Mapped[list[str]] = mapped_column(JSON, default=list)
    buffer_before_minutes: Mapped[int] = mapped_column(default=0)
    buffer_after_minutes: Mapped[int] = mapped_column(default=15)
    min_notice_minutes: Mapped[int] = mapped_column(default=60)
    horizon_days: Mapped[int] = mapped_column(default=30)
    slot_step_minutes: Mapped[int] = mapped_column(default=15)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Service(Base):
    """Something a provider sells: a treatment of a fixed duration at a fixed price."""

    __tablename__ = "services"
    __table_args__ = (
        CheckConstraint("duration_minutes BETWEEN 5 AND 720", name="duration"),
        CheckConstraint("price_amount >= 0", name="price"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    provider_id: Mapped[str] = mapped_column(
        ForeignKey("provider_profiles.user_id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    duration_minutes: Mapped[int]
    price_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="IDR")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
