from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from pesan import metrics
from pesan.bookings import availability, reschedule, service, views
from pesan.bookings.enums import BookingAction, BookingMode, BookingStatus
from pesan.bookings.rules import Policy
from pesan.bookings.schemas import (
    AvailabilityOut,
    BookingOut,
    BookNowIn,
    BookNowOut,
    OnTheWayIn,
    ProposalIn,
    ProposalOut,
    ReasonIn,
)
from pesan.db import Database
from pesan.deps import AppSettings, CurrentUser, Db, Now
from pesan.errors import Problem
from pesan.providers.schemas import ProviderOut
from pesan.schemas import Limit as PageLimit
from pesan.schemas import Page, Timestamp, json_response, problem_responses
from pesan.throttle import Limit, Throttle

router = APIRouter(prefix="/bookings", tags=["bookings"])
# Availability is asked of a provider, but it is the bookings that take their time.
provider_router = APIRouter(prefix="/providers", tags=["providers"])


async def get_policy(settings: AppSettings) -> Policy:
    """`async`, though it never awaits: FastAPI runs a plain `def` dependency in the thread
    pool, a trip that costs more than the work."""
    return Policy.from_settings(settings)


BookingPolicy = Annotated[Policy, Depends(get_policy)]

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Retry with the same key and body: the same booking, nothing new made.",
    ),
]


@router.post("", status_code=201, response_model=BookNowOut, responses=problem_responses(429))
async def book_now(
    body: BookNowIn,
    caller: CurrentUser,
    request: Request,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Book Now: the booking, its conversation, the booking message and the admin notification,
    made in one transaction. A retry with the same Idempotency-Key and body answers the first
    booking again, with the header `Idempotent-Replayed: true`. A time the provider cannot take
    is 409 `slot_unavailable` with the nearest `freeStartTimes`."""
    # The database, clock, policy and limits straight from the app's state, as the send
    # does: on a hot route each dependency FastAPI solves costs ~20 us (here six of them).
    state = request.app.state
    db: Database = state.db
    throttle: Throttle = state.throttle
    now = state.clock.now()
    policy = Policy.from_settings(state.settings)
    await throttle.check(Limit.book, caller.id)
    try:
        # On SQLite it joins the group commit as a Core job, like a chat send
        # (pesan.db.Database.write): it reads with the ORM at most, and writes with Core.
        result = await db.write(
            lambda session: service.book_now(session, caller, body, idempotency_key, now, policy),
            orm=False,
        )
    except Problem as problem:
        metrics.BOOKINGS_CREATED.labels(outcome=problem.code).inc()
        raise
    except Exception:
        metrics.BOOKINGS_CREATED.labels(outcome="error").inc()
        raise
    metrics.BOOKINGS_CREATED.labels(outcome="replayed" if result.replayed else "created").inc()
    # Already a BookNowOut: answered as is, without FastAPI validating it a second time.
    response = json_response(result.answer, 201)
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@router.get("", response_model=Page[BookingOut])
def list_bookings(
    caller: CurrentUser,
    db: Db,
    status: BookingStatus | None = None,
    limit: PageLimit = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[BookingOut]:
    """The caller's bookings as booker or provider (an admin's: all), newest first."""
    with db.reader() as session:
        items, next_cursor = views.list_bookings(session, caller, status, limit, cursor)
    return Page[BookingOut](items=items, next_cursor=next_cursor)


@router.get("/{booking_id}", response_model=BookingOut)
def get_booking(booking_id: str, caller: CurrentUser, db: Db) -> BookingOut:
    with db.reader() as session:
        return views.get_booking(session, caller, booking_id)


@router.get("/{booking_id}/alternatives", response_model=Page[ProviderOut])
def alternatives(booking_id: str, caller: CurrentUser, db: Db, now: Now) -> Page[ProviderOut]:
    """Up to 5 other providers of the same type and area who could take this booking now:
    for `now`, available and free; for `scheduled`, free at the same start. Closest in price
    first, then the cheaper, then the most recently active."""
    with db.reader() as session:
        booking = views.visible_booking(session, caller, booking_id)
        items = availability.alternatives(
            session,
            provider_id=booking.provider_id,
            mode=BookingMode(booking.mode),
            start=booking.start_at,
            duration_minutes=booking.duration_minutes,
            price_amount=booking.price_amount,
            now=now,
        )
    return Page[ProviderOut](items=items)


def _change(
    db: Db,
    caller: CurrentUser,
    now: Now,
    policy: Policy,
    booking_id: str,
    action: BookingAction,
    **kwargs: object,
) -> BookingOut:
    with db.transaction() as session:
        return service.change_status(
            session,
            caller,
            booking_id,
            action,
            now,
            policy,
            **kwargs,  # type: ignore[arg-type]
        )


@router.post("/{booking_id}/accept", response_model=BookingOut)
def accept(
    booking_id: str, caller: CurrentUser, db: Db, now: Now, policy: BookingPolicy
) -> BookingOut:
    """Pending → accepted (the provider). Their other requests for the same time end."""
    return _change(db, caller, now, policy, booking_id, BookingAction.accept)


@router.post("/{booking_id}/decline", response_model=BookingOut)
def decline(
    booking_id: str,
    caller: CurrentUser,
    db: Db,
    now: Now,
    policy: BookingPolicy,
    body: ReasonIn | None = None,
) -> BookingOut:
    return _change(
        db,
        caller,
        now,
        policy,
        booking_id,
        BookingAction.decline,
        reason=body.reason if body else None,
    )


@router.post("/{booking_id}/on-the-way", response_model=BookingOut)
def on_the_way(
    booking_id: str,
    body: OnTheWayIn,
    caller: CurrentUser,
    db: Db,
    now: Now,
    policy: BookingPolicy,
) -> BookingOut:
    return _change(
        db, caller, now, policy, booking_id, BookingAction.on_the_way, eta_minutes=body.eta_minutes
    )


@router.post("/{booking_id}/arrived", response_model=BookingOut)
def arrived(
    booking_id: str, caller: CurrentUser, db: Db, now: Now, policy: BookingPolicy
) -> BookingOut:
    return _change(db, caller, now, policy, booking_id, BookingAction.arrived)


@router.post("/{booking_id}/cancel", response_model=BookingOut)
def cancel(
    booking_id: str,
    caller: CurrentUser,
    db: Db,
    now: Now,
    policy: BookingPolicy,
    body: ReasonIn | None = None,
) -> BookingOut:
    """Either party. Cancelling a confirmed booking within the policy's window before its start
    is recorded as late and counts against whoever cancels; a customer whose provider is too
    late cancels without penalty (`lateCancellation`, `countsAgainst`)."""
    return _change(
        db,
        caller,
        now,
        policy,
        booking_id,
        BookingAction.cancel,
        reason=body.reason if body else None,
    )


@router.post("/{booking_id}/complete", response_model=BookingOut)
def complete(
    booking_id: str, caller: CurrentUser, db: Db, now: Now, policy: BookingPolicy
) -> BookingOut:
    return _change(db, caller, now, policy, booking_id, BookingAction.complete)


@router.post("/{booking_id}/no-show", response_model=BookingOut)
def no_show(
    booking_id: str,
    caller: CurrentUser,
    db: Db,
    now: Now,
    policy: BookingPolicy,
    body: ReasonIn | None = None,
) -> BookingOut:
    """The provider records that the customer was not there, from the grace period after the
    start on (PESAN_NO_SHOW_GRACE_MINUTES). It counts against the booker."""
    return _change(
        db,
        caller,
        now,
        policy,
        booking_id,
        BookingAction.no_show,
        reason=body.reason if body else None,
    )


@router.get("/{booking_id}/proposals", response_model=Page[ProposalOut])
def proposals(booking_id: str, caller: CurrentUser, db: Db) -> Page[ProposalOut]:
    """Every proposal to move this booking, oldest first."""
    with db.reader() as session:
        return Page[ProposalOut](items=reschedule.list_proposals(session, caller, booking_id))


@router.post("/{booking_id}/proposals", status_code=201, response_model=ProposalOut)
def propose(
    booking_id: str, body: ProposalIn, caller: CurrentUser, db: Db, now: Now
) -> ProposalOut:
    """Either party proposes a new start for a pending or accepted scheduled booking; it is
    posted in the chat as a `reschedule` message and replaces an open proposal."""
    with db.transaction() as session:
        return reschedule.propose(session, caller, booking_id, body.start_at, now)


@router.post("/{booking_id}/proposals/{proposal_id}/accept", response_model=ProposalOut)
def accept_proposal(
    booking_id: str,
    proposal_id: str,
    caller: CurrentUser,
    db: Db,
    now: Now,
    policy: BookingPolicy,
) -> ProposalOut:
    """The other party accepts: the booking moves, if that time is still free (else 409
    `slot_unavailable` and the proposal stays open)."""
    with db.transaction() as session:
        return reschedule.answer(
            session, caller, booking_id, proposal_id, accept=True, now=now, policy=policy
        )


@router.post("/{booking_id}/proposals/{proposal_id}/decline", response_model=ProposalOut)
def decline_proposal(
    booking_id: str,
    proposal_id: str,
    caller: CurrentUser,
    db: Db,
    now: Now,
    policy: BookingPolicy,
) -> ProposalOut:
    with db.transaction() as session:
        return reschedule.answer(
            session, caller, booking_id, proposal_id, accept=False, now=now, policy=policy
        )


@provider_router.get("/{provider_id}/availability", response_model=AvailabilityOut)
def provider_availability(
    provider_id: str,
    db: Db,
    now: Now,
    service_id: Annotated[str, Query(alias="serviceId", min_length=1, max_length=64)],
    start: Annotated[Timestamp | None, Query(alias="from", description="Default: now.")] = None,
    end: Annotated[
        Timestamp | None,
        Query(alias="to", description="Default: 7 days after `from`; at most 31 days after it."),
    ] = None,
) -> AvailabilityOut:
    """The free start times of a service in [from, to), in UTC: inside the provider's hours,
    after their notice, before their horizon, clear of their bookings and buffers. Book Now
    takes exactly these for `scheduled`."""
    with db.reader() as session:
        return availability.availability(session, provider_id, service_id, start, end, now)
