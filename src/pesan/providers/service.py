"""Provider profiles, presence, services and schedules."""

from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import Connection, and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from pesan.accounts import service as accounts
from pesan.auth import Caller, ensure_role
from pesan.db import Prepared, insert_or_existing, table_of
from pesan.errors import NotFound, ValidationFailed
from pesan.ids import new_id
from pesan.paging import id_cursor, take_page
from pesan.providers.enums import Presence
from pesan.providers.models import ProviderProfile, Service
from pesan.providers.schedule import WEEKDAYS, Schedule, ScheduleProblem, format_clock, parse_day
from pesan.providers.schemas import (
    OpeningInterval,
    PresenceIn,
    ProfileIn,
    ProviderOut,
    ScheduleIn,
    ScheduleOut,
    ServiceIn,
    ServiceOut,
    WeeklyHours,
)
from pesan.roles import PROVIDERS
from pesan.schemas import Money
from pesan.timeutil import utcnow


def service_out(service: Service) -> ServiceOut:
    return ServiceOut(
        id=service.id,
        name=service.name,
        duration_minutes=service.duration_minutes,
        price=Money(amount=service.price_amount, currency=service.currency),
    )


def provider_out(profile: ProviderProfile, services: list[Service]) -> ProviderOut:
    return ProviderOut(
        id=profile.user_id,
        type=profile.type,
        name=profile.name,
        bio=profile.bio,
        languages=list(profile.languages or []),
        timezone=profile.timezone,
        area=profile.area,
        presence=profile.presence,
        busy_until=profile.busy_until,
        services=[service_out(s) for s in services if s.active],
    )


def _services_of(session: Session, provider_ids: list[str]) -> dict[str, list[Service]]:
    out: dict[str, list[Service]] = {pid: [] for pid in provider_ids}
    if provider_ids:
        rows = session.scalars(
            select(Service)
            .where(Service.provider_id.in_(provider_ids), Service.active.is_(True))
            .order_by(Service.provider_id, Service.duration_minutes, Service.id)
        )
        for service in rows:
            out[service.provider_id].append(service)
    return out


def get_profile(session: Session, provider_id: str) -> ProviderProfile:
    profile = session.get(ProviderProfile, provider_id)
    if profile is None:
        raise NotFound("No such provider.")
    return profile


def get_provider(session: Session, provider_id: str) -> ProviderOut:
    profile = get_profile(session, provider_id)
    return provider_out(profile, _services_of(session, [profile.user_id])[profile.user_id])


def list_providers(
    session: Session,
    *,
    type: str | None,
    q: str | None,
    area: str | None,
    presence: str | None,
    limit: int,
    after_id: str | None,
) -> tuple[list[ProviderOut], str | None]:
    query = select(ProviderProfile).order_by(ProviderProfile.user_id).limit(limit + 1)
    if type:
        query = query.where(ProviderProfile.type == type)
    if presence:
        query = query.where(ProviderProfile.presence == presence)
    if area:
        query = query.where(ProviderProfile.area.ilike(_like(area), escape="\\"))
    if q:
        pattern = _like(q)
        query = query.where(
            or_(
                ProviderProfile.name.ilike(pattern, escape="\\"),
                ProviderProfile.bio.ilike(pattern, escape="\\"),
                ProviderProfile.area.ilike(pattern, escape="\\"),
            )
        )
    after = id_cursor(after_id)
    if after:
        query = query.where(ProviderProfile.user_id > after)
    profiles, next_cursor = take_page(session.scalars(query).all(), limit, lambda p: p.user_id)
    return providers_out(session, profiles), next_cursor


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _own_profile(session: Session, caller: Caller) -> ProviderProfile:
    """The caller's profile, made with defaults the first time a provider touches it."""
    ensure_role(caller, PROVIDERS, "have a provider profile")
    profile = session.get(ProviderProfile, caller.id, with_for_update=True)
    if profile is not None:
        return profile
    user = accounts.get_user(session, caller.id)
    made = ProviderProfile(
        user_id=caller.id,
        type=caller.role.value,
        name=user.name,
        bio="",
        languages=[],
        area="",
        presence=Presence.offline,
    )
    # Made meanwhile by the provider's other request: that one it is.
    return insert_or_existing(
        session, made, lambda: session.get(ProviderProfile, caller.id, with_for_update=True)
    )


def upsert_profile(session: Session, caller: Caller, body: ProfileIn) -> ProviderOut:
    profile = _own_profile(session, caller)
    if body.name is not None:
        profile.name = body.name
    profile.bio = body.bio
    profile.languages = body.languages
    profile.timezone = body.timezone
    profile.area = body.area
    profile.updated_at = utcnow()
    session.flush()
    return get_provider(session, caller.id)


def set_presence(session: Session, caller: Caller, body: PresenceIn) -> ProviderOut:
    profile = _own_profile(session, caller)
    now = utcnow()
    busy_until: datetime | None = None
    if body.presence == "busy" and body.busy_until is not None:
        if body.busy_until <= now:
            raise ValidationFailed("busyUntil", "must be in the future")
        busy_until = body.busy_until
    elif body.presence != "busy" and body.busy_until is not None:
        raise ValidationFailed("busyUntil", "only a busy provider has busyUntil")
    profile.presence = body.presence
    profile.busy_until = busy_until
    profile.busy_with_booking = None  # the provider's own choice stands when that work ends
    profile.updated_at = now
    session.flush()
    return get_provider(session, caller.id)


def add_service(session: Session, caller: Caller, body: ServiceIn) -> ServiceOut:
    profile = _own_profile(session, caller)
    service = Service(
        id=new_id(),
        provider_id=profile.user_id,
        name=body.name,
        duration_minutes=body.duration_minutes,
        price_amount=body.price.amount,
        currency=body.price.currency,
        active=True,
    )
    session.add(service)
    session.flush()
    return service_out(service)


def get_service(session: Session, provider_id: str, service_id: str) -> Service | None:
    service = session.get(Service, service_id)
    if service is None or service.provider_id != provider_id or not service.active:
        return None
    return service


def areas(session: Session) -> list[str]:
    """The areas providers work in, alphabetically (the directory's area filter)."""
    rows = session.scalars(
        select(ProviderProfile.area).where(ProviderProfile.area != "").distinct()
    )
    return sorted(set(rows), key=str.lower)


# A provider's profile as the schedule and availability read it: its ORM object, or its row as
# attributes (what Book Now's read gives: an ORM object costs ~30 instrumented sets to build).
ProfileRow = ProviderProfile | SimpleNamespace

_profiles, _services = table_of(ProviderProfile), table_of(Service)
_PROFILE_NAMES = [c.key for c in _profiles.c]
_SERVICE_NAMES = [c.key for c in _services.c]
# A provider and one of their active services, in one prebuilt statement (Book Now's read).
_offer = (
    select(_profiles, *(c.label(f"service_{c.key}") for c in _services.c))
    .select_from(
        _profiles.outerjoin(
            _services,
            and_(
                _services.c.id == bindparam("sid"),
                _services.c.provider_id == _profiles.c.user_id,
                _services.c.active.is_(True),
            ),
        )
    )
    .where(_profiles.c.user_id == bindparam("pid"))
)
_OFFER = Prepared(_offer)
_OFFER_LOCKED = Prepared(_offer.with_for_update(of=_profiles))


def offer_of(
    connection: Connection, provider_id: str, service_id: str, *, lock: bool = False
) -> tuple[SimpleNamespace, SimpleNamespace | None]:
    """The provider's profile and their active service of that id (None if they offer none),
    read with a prepared statement into plain objects with the columns as attributes: nothing
    for the ORM to build, load, track or flush. `lock` locks the profile for the transaction
    (PostgreSQL)."""
    statement = _OFFER_LOCKED if lock else _OFFER
    rows = statement.rows(connection, {"pid": provider_id, "sid": service_id})
    if not rows:
        raise NotFound("No such provider.")
    row = rows[0]
    split = len(_PROFILE_NAMES)
    profile = SimpleNamespace(**dict(zip(_PROFILE_NAMES, row[:split], strict=True)))
    if row[split] is None:
        return profile, None
    return profile, SimpleNamespace(**dict(zip(_SERVICE_NAMES, row[split:], strict=True)))


# ---- presence follows work -----------------------------------------------------------------


def lock_profile(session: Session, provider_id: str) -> ProviderProfile:
    """The profile, locked for this transaction: presence is read, then changed."""
    profile = session.get(ProviderProfile, provider_id, with_for_update=True)
    if profile is None:
        raise NotFound("No such provider.")
    return profile


def hold_for_work(
    session: Session, provider_id: str, booking_id: str, until: datetime, now: datetime
) -> None:
    """A `now` booking makes (or keeps) its provider busy until its expected end: unless
    another booking holds them, or they chose busy or offline themselves (that choice
    stands). One conditional UPDATE, which also locks the row; a profile this session holds
    is brought up to date with it. No ORM change is left to flush, so Book Now can run as a
    Core job of the group commit (`db.write(..., orm=False)`)."""
    session.execute(
        update(ProviderProfile)
        .where(
            ProviderProfile.user_id == provider_id,
            or_(
                ProviderProfile.busy_with_booking == booking_id,
                and_(
                    ProviderProfile.busy_with_booking.is_(None),
                    ProviderProfile.presence == Presence.available,
                ),
            ),
        )
        .values(
            presence=Presence.busy, busy_until=until, busy_with_booking=booking_id, updated_at=now
        ),
        execution_options={"synchronize_session": "fetch"},
    )


def release_work(session: Session, provider_id: str, booking_id: str, now: datetime) -> None:
    """The booking that kept them busy ended: available again, unless they went offline."""
    profile = lock_profile(session, provider_id)
    if profile.busy_with_booking != booking_id:
        return
    profile.busy_with_booking = None
    if profile.presence == Presence.busy:
        profile.presence = Presence.available
        profile.busy_until = None
    profile.updated_at = now


# ---- schedules -------------------------------------------------------------------------------


def schedule_of(profile: ProfileRow) -> Schedule:
    return Schedule.from_stored(
        profile.timezone,
        profile.weekly_hours,
        profile.days_off,
        buffer_before_minutes=profile.buffer_before_minutes,
        buffer_after_minutes=profile.buffer_after_minutes,
        min_notice_minutes=profile.min_notice_minutes,
        horizon_days=profile.horizon_days,
        slot_step_minutes=profile.slot_step_minutes,
    )


def schedule_out(profile: ProviderProfile) -> ScheduleOut:
    schedule = schedule_of(profile)
    weekly = {
        day: [
            OpeningInterval(opens=format_clock(o), closes=format_clock(c))
            for o, c in schedule.weekly[day]
        ]
        for day in WEEKDAYS
    }
    return ScheduleOut(
        timezone=profile.timezone,
        weekly_hours=WeeklyHours(**weekly),
        days_off=sorted(schedule.days_off),
        buffer_before_minutes=schedule.buffer_before_minutes,
        buffer_after_minutes=schedule.buffer_after_minutes,
        min_notice_minutes=schedule.min_notice_minutes,
        horizon_days=schedule.horizon_days,
        slot_step_minutes=schedule.slot_step_minutes,
    )


def get_schedule(session: Session, provider_id: str) -> ScheduleOut:
    return schedule_out(get_profile(session, provider_id))


def put_schedule(session: Session, caller: Caller, body: ScheduleIn, now: datetime) -> ScheduleOut:
    """Replace the caller's schedule. Bookings already made keep their times."""
    profile = _own_profile(session, caller)
    weekly: dict[str, list[list[str]]] = {}
    for day in WEEKDAYS:
        intervals = [[i.opens, i.closes] for i in getattr(body.weekly_hours, day)]
        try:
            parsed = parse_day(intervals, f"weeklyHours.{day}")
        except ScheduleProblem as problem:
            raise ValidationFailed(problem.field, problem.message) from None
        weekly[day] = [[format_clock(o), format_clock(c)] for o, c in parsed]
    today = now.date()
    profile.weekly_hours = weekly
    profile.days_off = sorted({d.isoformat() for d in body.days_off if d >= today})
    profile.buffer_before_minutes = body.buffer_before_minutes
    profile.buffer_after_minutes = body.buffer_after_minutes
    profile.min_notice_minutes = body.min_notice_minutes
    profile.horizon_days = body.horizon_days
    profile.slot_step_minutes = body.slot_step_minutes
    profile.updated_at = now
    session.flush()
    return schedule_out(profile)


# ---- finding others --------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    """A provider and their service of the wanted duration."""

    profile: ProviderProfile
    service: Service


def offers(
    session: Session,
    *,
    type: str,
    area: str,
    duration_minutes: int,
    exclude_id: str,
    presence: Presence | None,
    limit: int = 200,
) -> list[Offer]:
    """Providers of this type in this area with an active service of this duration."""
    query = (
        select(ProviderProfile, Service)
        .join(Service, Service.provider_id == ProviderProfile.user_id)
        .where(
            ProviderProfile.type == type,
            func.lower(ProviderProfile.area) == area.lower(),
            ProviderProfile.user_id != exclude_id,
            Service.duration_minutes == duration_minutes,
            Service.active.is_(True),
        )
        .order_by(ProviderProfile.user_id, Service.price_amount, Service.id)
        .limit(limit)
    )
    if presence is not None:
        query = query.where(ProviderProfile.presence == presence)
    seen: dict[str, Offer] = {}
    for profile, service in session.execute(query):
        seen.setdefault(profile.user_id, Offer(profile, service))  # cheapest of that length
    return list(seen.values())


def providers_out(session: Session, profiles: list[ProviderProfile]) -> list[ProviderOut]:
    services = _services_of(session, [p.user_id for p in profiles])
    return [provider_out(p, services[p.user_id]) for p in profiles]
