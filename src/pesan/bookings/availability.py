"""When a provider can be booked: their schedule (providers/schedule.py) against the time their
held bookings take. Availability, Book Now and reschedule all ask `refusal` here, so a time
that is offered is a time that Book Now takes, and the other way round."""

from datetime import datetime, timedelta

from sqlalchemy import bindparam, literal_column, select
from sqlalchemy.orm import Session

from pesan.bookings.enums import ACTIVE, BookingMode
from pesan.bookings.models import Booking
from pesan.bookings.schemas import AvailabilityOut, SlotOut
from pesan.db import Prepared, connection_of, table_of
from pesan.errors import ValidationFailed
from pesan.providers import schedule as hours
from pesan.providers import service as providers
from pesan.providers.enums import Presence
from pesan.providers.schemas import ProviderOut

MAX_WINDOW = timedelta(days=31)
FREE_TIMES_OFFERED = 5


_bookings = table_of(Booking)
# Built once: Book Now asks it every time. The held statuses are written into the SQL: a
# list of values would be an "expanding" parameter, rewritten on every execution.
_held = select(_bookings.c.blocked_from, _bookings.c.blocked_until).where(
    _bookings.c.provider_id == bindparam("pid"),
    _bookings.c.status.in_([literal_column(f"'{status}'") for status in sorted(ACTIVE)]),
    _bookings.c.blocked_until > bindparam("start"),
    _bookings.c.blocked_from < bindparam("end"),
)
_HELD = Prepared(_held)
_HELD_BUT = Prepared(_held.where(_bookings.c.id != bindparam("except_id")))


def held(
    session: Session,
    provider_id: str,
    start: datetime,
    end: datetime,
    *,
    except_booking: str | None = None,
) -> list[hours.Interval]:
    """The time the provider's held bookings take that touches [start, end)."""
    params = {"pid": provider_id, "start": start, "end": end, "except_id": except_booking}
    statement = _HELD if except_booking is None else _HELD_BUT
    return [(a, b) for a, b in statement.rows(connection_of(session), params)]


def _held_around(
    session: Session,
    profile: providers.ProfileRow,
    schedule: hours.Schedule,
    start: datetime,
    end: datetime,
    except_booking: str | None = None,
) -> list[hours.Interval]:
    margin = timedelta(minutes=schedule.buffer_before_minutes + schedule.buffer_after_minutes)
    return held(
        session,
        profile.user_id,
        start - margin - timedelta(days=1),
        end + margin + timedelta(days=1),
        except_booking=except_booking,
    )


def refusal(
    session: Session,
    profile: providers.ProfileRow,
    duration: timedelta,
    start: datetime,
    now: datetime,
    *,
    except_booking: str | None = None,
) -> hours.Refusal | None:
    """Why `start` cannot be booked with this provider now, or None (scheduled bookings)."""
    schedule = providers.schedule_of(profile)
    taken = _held_over(session, profile, schedule.hold(start, start + duration), except_booking)
    return hours.refusal(schedule, taken, duration, start, now)


def now_is_free(
    session: Session, profile: providers.ProfileRow, duration: timedelta, now: datetime
) -> bool:
    """A `now` booking needs no hours, only that the provider holds nothing at that time."""
    hold = providers.schedule_of(profile).hold(now, now + duration)
    taken = _held_over(session, profile, hold)
    return not any(hours.overlaps(hold, other) for other in taken)


def _held_over(
    session: Session,
    profile: providers.ProfileRow,
    hold: hours.Interval,
    except_booking: str | None = None,
) -> list[hours.Interval]:
    """The held times that overlap `hold`: all that one start's check compares with it. The
    query's condition is `hours.overlaps` itself, so its answer is the same as reading the
    days around (as free times must) and comparing each; just without the rows (each with
    two datetimes to convert) that cannot overlap."""
    return held(session, profile.user_id, hold[0], hold[1], except_booking=except_booking)


def hold_of(profile: providers.ProfileRow, start: datetime, end: datetime) -> hours.Interval:
    return providers.schedule_of(profile).hold(start, end)


def free_starts(
    session: Session,
    profile: providers.ProfileRow,
    duration: timedelta,
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    except_booking: str | None = None,
) -> list[datetime]:
    schedule = providers.schedule_of(profile)
    taken = _held_around(session, profile, schedule, start, end + duration, except_booking)
    return hours.free_starts(schedule, taken, duration, start, end, now)


def nearest_free_starts(
    session: Session,
    profile: providers.ProfileRow,
    duration: timedelta,
    wanted: datetime,
    now: datetime,
    *,
    except_booking: str | None = None,
) -> list[datetime]:
    """The free start times closest to the one wanted (for a 409 `slot_unavailable`)."""
    latest = now + timedelta(days=profile.horizon_days)
    start = max(now, min(wanted, latest) - timedelta(days=2))
    end = min(latest, max(wanted, now) + timedelta(days=7))
    if end <= start:  # asked for a time beyond the horizon: look at its last week
        end = latest
    around = free_starts(session, profile, duration, start, end, now, except_booking=except_booking)
    nearest = sorted(around, key=lambda s: (abs(s - wanted), s))[:FREE_TIMES_OFFERED]
    return sorted(nearest)


def availability(
    session: Session,
    provider_id: str,
    service_id: str,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
) -> AvailabilityOut:
    """Free start times of a service in [start, end) (default: the next 7 days)."""
    profile = providers.get_profile(session, provider_id)
    service = providers.get_service(session, profile.user_id, service_id)
    if service is None:
        raise ValidationFailed("serviceId", "not a service this provider offers")
    start = start or now
    end = end or start + timedelta(days=7)
    if end <= start:
        raise ValidationFailed("to", "must be after from")
    if end - start > MAX_WINDOW:
        raise ValidationFailed("to", "at most 31 days after from")
    duration = timedelta(minutes=service.duration_minutes)
    starts = free_starts(session, profile, duration, start, end, now)
    return AvailabilityOut(
        timezone=profile.timezone,
        items=[SlotOut(start_at=s, end_at=s + duration) for s in starts],
    )


def alternatives(
    session: Session,
    *,
    provider_id: str,
    mode: BookingMode,
    start: datetime,
    duration_minutes: int,
    price_amount: int,
    now: datetime,
    limit: int = 5,
) -> list[ProviderOut]:
    """Up to `limit` other providers of the same type and area who could take the same booking
    (for `now`: available and free now; for `scheduled`: free at the same start). Closest in
    price first, then the cheaper, then the most recently active."""
    profile = providers.get_profile(session, provider_id)
    duration = timedelta(minutes=duration_minutes)
    found = providers.offers(
        session,
        type=profile.type,
        area=profile.area,
        duration_minutes=duration_minutes,
        exclude_id=profile.user_id,
        presence=Presence.available if mode == BookingMode.now else None,
    )
    found.sort(
        key=lambda o: (
            abs(o.service.price_amount - price_amount),
            o.service.price_amount,
            -o.profile.updated_at.timestamp(),
        )
    )
    chosen = []
    for offer in found:
        if mode == BookingMode.now:
            ok = now_is_free(session, offer.profile, duration, now)
        else:
            ok = refusal(session, offer.profile, duration, start, now) is None
        if ok:
            chosen.append(offer.profile)
        if len(chosen) == limit:
            break
    return providers.providers_out(session, chosen)
