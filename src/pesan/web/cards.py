"""What a booking card shows a viewer: its words, its times, and exactly the actions the
viewer may take now (from the booking rules, never decided here)."""

from datetime import datetime

from pesan.auth import Caller
from pesan.bookings import rules
from pesan.bookings.enums import Actor, BookingAction, BookingMode, BookingStatus, LocationKind
from pesan.bookings.schemas import BookingOut
from pesan.web import words
from pesan.web.i18n import gettext


def actor_of(booking: BookingOut, caller: Caller) -> Actor | None:
    if caller.id == booking.provider_id:
        return Actor.provider
    if caller.id == booking.customer_id:
        return Actor.booker
    return None  # an admin watching: no buttons


def facts_of(booking: BookingOut) -> rules.Facts:
    return rules.Facts(
        status=BookingStatus(booking.status),
        mode=BookingMode(booking.mode),
        location_kind=LocationKind(booking.location.kind),
        start_at=booking.start_at,
        end_at=booking.end_at,
        respond_by=booking.respond_by,
        eta_at=booking.eta_at,
    )


def actions_for(
    booking: BookingOut, caller: Caller, now: datetime, policy: rules.Policy
) -> list[BookingAction]:
    actor = actor_of(booking, caller)
    if actor is None:
        return []
    allowed = rules.allowed_actions(facts_of(booking), actor, now, policy)
    return [action for action in allowed if action in words.ACTION]


def respond_by(booking: BookingOut) -> datetime | None:
    """When the provider must have answered a pending request."""
    return booking.respond_by if booking.status == BookingStatus.pending else None


def status_label(status: str) -> str:
    return gettext(words.STATUS[BookingStatus(status)])


def action_label(action: BookingAction) -> str:
    return gettext(words.ACTION[action])


def where(booking: BookingOut) -> str:
    location = booking.location
    label = gettext(words.LOCATION[location.kind])
    detail = location.room if location.kind in ("hotel", "villa") else location.address
    return f"{label}: {detail}" if detail else label
