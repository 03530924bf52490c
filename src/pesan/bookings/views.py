"""What a booking looks like to its parties: the JSON shape, one booking, and lists."""

from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from pesan.auth import Caller, ensure_visible
from pesan.bookings import rules
from pesan.bookings.enums import Actor, BookingMode, BookingStatus, LocationKind
from pesan.bookings.models import Booking
from pesan.bookings.schemas import BookingOut, Location
from pesan.errors import NotFound
from pesan.paging import id_cursor, take_page
from pesan.schemas import Money

# A booking's ORM object, or its row as attributes (Book Now's, which it just inserted).
BookingRow = Booking | SimpleNamespace


def booking_out(booking: BookingRow) -> BookingOut:
    return BookingOut(
        id=booking.id,
        status=booking.status,
        mode=booking.mode,
        customer_id=booking.customer_id,
        customer_name=booking.customer_name,
        provider_id=booking.provider_id,
        provider_name=booking.provider_name,
        service_id=booking.service_id,
        service_name=booking.service_name,
        duration_minutes=booking.duration_minutes,
        start_at=booking.start_at,
        end_at=booking.end_at,
        location=Location(
            kind=booking.location_kind,
            address=booking.location_address,
            room=booking.location_room,
        ),
        note=booking.note,
        guest_name=booking.guest_name,
        price=Money(amount=booking.price_amount, currency=booking.currency),
        timezone=booking.timezone,
        respond_by=booking.respond_by,
        eta_at=booking.eta_at,
        status_reason=booking.status_reason,
        ended_by=Actor(booking.ended_by) if booking.ended_by else None,
        late_cancellation=booking.late_cancellation,
        counts_against=Actor(booking.counts_against) if booking.counts_against else None,
        conversation_id=booking.conversation_id,
        created_at=booking.created_at,
        updated_at=booking.updated_at,
    )


def facts_of(booking: BookingRow) -> rules.Facts:
    return rules.Facts(
        status=BookingStatus(booking.status),
        mode=BookingMode(booking.mode),
        location_kind=LocationKind(booking.location_kind),
        start_at=booking.start_at,
        end_at=booking.end_at,
        respond_by=booking.respond_by,
        eta_at=booking.eta_at,
    )


def visible_booking(session: Session, caller: Caller, booking_id: str) -> Booking:
    booking = session.get(Booking, booking_id)
    if booking is None:
        raise NotFound("No such booking.")
    ensure_visible(caller, (booking.customer_id, booking.provider_id), "booking")
    return booking


def get_booking(session: Session, caller: Caller, booking_id: str) -> BookingOut:
    return booking_out(visible_booking(session, caller, booking_id))


def list_bookings(
    session: Session,
    caller: Caller,
    status: BookingStatus | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[BookingOut], str | None]:
    """The caller's bookings, as booker or provider (admins: all), newest first."""
    query = select(Booking).order_by(Booking.id.desc()).limit(limit + 1)
    if not caller.is_admin:
        query = query.where(or_(Booking.customer_id == caller.id, Booking.provider_id == caller.id))
    if status:
        query = query.where(Booking.status == status)
    after = id_cursor(cursor)
    if after:
        query = query.where(Booking.id < after)
    rows, next_cursor = take_page(session.scalars(query).all(), limit, lambda b: b.id)
    return [booking_out(b) for b in rows], next_cursor


def bookings_in_conversation(
    session: Session, caller: Caller, conversation_id: str, limit: int = 20
) -> list[BookingOut]:
    """The bookings made in a conversation, newest first (its booking cards)."""
    rows = list(
        session.scalars(
            select(Booking)
            .where(Booking.conversation_id == conversation_id)
            .order_by(Booking.id.desc())
            .limit(limit)
        )
    )
    for booking in rows:
        ensure_visible(caller, (booking.customer_id, booking.provider_id), "booking")
    return [booking_out(b) for b in rows]


def provider_schedule(
    session: Session, caller: Caller, start: datetime, end: datetime
) -> list[BookingOut]:
    """The provider's bookings that start in [start, end), earliest first (today's list)."""
    rows = session.scalars(
        select(Booking)
        .where(
            Booking.provider_id == caller.id,
            Booking.start_at >= start,
            Booking.start_at < end,
        )
        .order_by(Booking.start_at, Booking.id)
    )
    return [booking_out(b) for b in rows]


def pending_for_provider(session: Session, caller: Caller, limit: int = 50) -> list[BookingOut]:
    """Requests waiting for this provider's answer, oldest first."""
    rows = session.scalars(
        select(Booking)
        .where(Booking.provider_id == caller.id, Booking.status == BookingStatus.pending)
        .order_by(Booking.id)
        .limit(limit)
    )
    return [booking_out(b) for b in rows]
