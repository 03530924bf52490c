from typing import Annotated

from fastapi import APIRouter, Query

from pesan.deps import CurrentUser, Db, Now
from pesan.providers import service
from pesan.providers.enums import Presence, ProviderType
from pesan.providers.schemas import (
    PresenceIn,
    ProfileIn,
    ProviderOut,
    ScheduleIn,
    ScheduleOut,
    ServiceIn,
    ServiceOut,
)
from pesan.schemas import Limit, Page

router = APIRouter(prefix="/providers", tags=["providers"])


@router.get("", response_model=Page[ProviderOut])
def list_providers(
    db: Db,
    type: ProviderType | None = None,
    q: Annotated[str | None, Query(max_length=100, description="Name, bio or area.")] = None,
    area: Annotated[str | None, Query(max_length=100)] = None,
    presence: Presence | None = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[ProviderOut]:
    with db.reader() as session:
        items, next_cursor = service.list_providers(
            session, type=type, q=q, area=area, presence=presence, limit=limit, after_id=cursor
        )
    return Page[ProviderOut](items=items, next_cursor=next_cursor)


@router.put("/me", response_model=ProviderOut)
def put_profile(body: ProfileIn, caller: CurrentUser, db: Db) -> ProviderOut:
    with db.transaction() as session:
        return service.upsert_profile(session, caller, body)


@router.put("/me/presence", response_model=ProviderOut)
def put_presence(body: PresenceIn, caller: CurrentUser, db: Db) -> ProviderOut:
    with db.transaction() as session:
        return service.set_presence(session, caller, body)


@router.post("/me/services", status_code=201, response_model=ServiceOut)
def add_service(body: ServiceIn, caller: CurrentUser, db: Db) -> ServiceOut:
    with db.transaction() as session:
        return service.add_service(session, caller, body)


@router.put("/me/schedule", response_model=ScheduleOut)
def put_schedule(body: ScheduleIn, caller: CurrentUser, db: Db, now: Now) -> ScheduleOut:
    """Replace the caller's weekly hours (with breaks as gaps), days off, buffers, notice,
    horizon and start step. Bookings already made keep their times."""
    with db.transaction() as session:
        return service.put_schedule(session, caller, body, now)


@router.get("/{provider_id}/schedule", response_model=ScheduleOut)
def get_schedule(provider_id: str, db: Db) -> ScheduleOut:
    """When a provider works (or a place is open): public, like the profile."""
    with db.reader() as session:
        return service.get_schedule(session, provider_id)


@router.get("/{provider_id}", response_model=ProviderOut)
def get_provider(provider_id: str, db: Db) -> ProviderOut:
    with db.reader() as session:
        return service.get_provider(session, provider_id)
