from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from pesan import metrics
from pesan.bookings import service
from pesan.bookings.enums import BookingAction
from pesan.bookings.schemas import (
    BookingOut,
    BookingStatus,
    BookNowIn,
    BookNowOut,
    OnTheWayIn,
    ReasonIn,
)
from pesan.deps import CurrentUser, Db, Throttler
from pesan.errors import Problem
from pesan.schemas import Limit as PageLimit
from pesan.schemas import Page, problem_responses
from pesan.throttle import Limit

router = APIRouter(prefix="/bookings", tags=["bookings"])

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
def book_now(
    body: BookNowIn,
    caller: CurrentUser,
    db: Db,
    response: Response,
    throttle: Throttler,
    idempotency_key: IdempotencyKeyHeader = None,
) -> BookNowOut:
    """Book Now: the booking, its conversation, the booking message and the admin notification,
    made in one transaction. A retry with the same Idempotency-Key and body answers the first
    booking again, with the header `Idempotent-Replayed: true`."""
    throttle.hit(Limit.book, caller.id)
    try:
        with db.transaction() as session:
            result = service.book_now(session, caller, body, idempotency_key)
    except Problem as problem:
        metrics.BOOKINGS_CREATED.labels(outcome=problem.code).inc()
        raise
    except Exception:
        metrics.BOOKINGS_CREATED.labels(outcome="error").inc()
        raise
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    metrics.BOOKINGS_CREATED.labels(outcome="replayed" if result.replayed else "created").inc()
    return result.answer


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
        items, next_cursor = service.list_bookings(session, caller, status, limit, cursor)
    return Page[BookingOut](items=items, next_cursor=next_cursor)


@router.get("/{booking_id}", response_model=BookingOut)
def get_booking(booking_id: str, caller: CurrentUser, db: Db) -> BookingOut:
    with db.reader() as session:
        return service.get_booking(session, caller, booking_id)


def _change(
    db: Db, caller: CurrentUser, booking_id: str, action: BookingAction, **kwargs: object
) -> BookingOut:
    with db.transaction() as session:
        return service.change_status(session, caller, booking_id, action, **kwargs)  # type: ignore[arg-type]


@router.post("/{booking_id}/accept", response_model=BookingOut)
def accept(booking_id: str, caller: CurrentUser, db: Db) -> BookingOut:
    return _change(db, caller, booking_id, BookingAction.accept)


@router.post("/{booking_id}/decline", response_model=BookingOut)
def decline(
    booking_id: str, caller: CurrentUser, db: Db, body: ReasonIn | None = None
) -> BookingOut:
    return _change(
        db, caller, booking_id, BookingAction.decline, reason=body.reason if body else None
    )


@router.post("/{booking_id}/on-the-way", response_model=BookingOut)
def on_the_way(booking_id: str, body: OnTheWayIn, caller: CurrentUser, db: Db) -> BookingOut:
    return _change(db, caller, booking_id, BookingAction.on_the_way, eta_minutes=body.eta_minutes)


@router.post("/{booking_id}/arrived", response_model=BookingOut)
def arrived(booking_id: str, caller: CurrentUser, db: Db) -> BookingOut:
    return _change(db, caller, booking_id, BookingAction.arrived)


@router.post("/{booking_id}/cancel", response_model=BookingOut)
def cancel(
    booking_id: str, caller: CurrentUser, db: Db, body: ReasonIn | None = None
) -> BookingOut:
    return _change(
        db, caller, booking_id, BookingAction.cancel, reason=body.reason if body else None
    )


@router.post("/{booking_id}/complete", response_model=BookingOut)
def complete(booking_id: str, caller: CurrentUser, db: Db) -> BookingOut:
    return _change(db, caller, booking_id, BookingAction.complete)
