"""Provider profiles, presence and services."""

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pesan.accounts.models import User
from pesan.auth import Caller, ensure_role
from pesan.errors import NotFound, ValidationFailed
from pesan.ids import new_id
from pesan.providers.models import ProviderProfile, Service
from pesan.providers.schemas import PresenceIn, ProfileIn, ProviderOut, ServiceIn, ServiceOut
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
    if after_id:
        query = query.where(ProviderProfile.user_id > after_id)
    profiles = list(session.scalars(query))
    more = len(profiles) > limit
    profiles = profiles[:limit]
    services = _services_of(session, [p.user_id for p in profiles])
    items = [provider_out(p, services[p.user_id]) for p in profiles]
    return items, (profiles[-1].user_id if more else None)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _own_profile(session: Session, caller: Caller) -> ProviderProfile:
    """The caller's profile, made with defaults the first time a provider touches it."""
    ensure_role(caller, PROVIDERS, "have a provider profile")
    profile = session.get(ProviderProfile, caller.id, with_for_update=True)
    if profile is None:
        user = session.get(User, caller.id)
        assert user is not None
        profile = ProviderProfile(
            user_id=caller.id,
            type=caller.role.value,
            name=user.name,
            bio="",
            languages=[],
            area="",
            presence="offline",
        )
        try:
            with session.begin_nested():
                session.add(profile)
                session.flush()
        except IntegrityError:  # made meanwhile by the provider's other request
            profile = session.get(ProviderProfile, caller.id, with_for_update=True)
            assert profile is not None
    return profile


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
