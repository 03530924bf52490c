"""UTC time: stored in UTC, answered as RFC 3339 with `Z`."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC (SQLite returns them that way)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def rfc3339(value: datetime) -> str:
    value = as_utc(value)
    text = value.isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def zone_label(value: datetime, zone: str) -> str:
    """The zone's abbreviation at that moment: WITA for Asia/Makassar, CET or CEST in Berlin."""
    return value.astimezone(ZoneInfo(zone)).tzname() or zone


def clock_in(value: datetime, zone: str) -> str:
    """`14:30 WITA`: a time as people in the provider's zone read it."""
    local = value.astimezone(ZoneInfo(zone))
    return f"{local:%H:%M} {zone_label(value, zone)}"


def day_and_clock_in(value: datetime, zone: str) -> str:
    """`Wed 26 Nov 2026, 14:30 WITA`."""
    local = value.astimezone(ZoneInfo(zone))
    return f"{local:%a %d %b %Y}, {clock_in(value, zone)}"
