"""What a booking card shows a viewer: its words, its times, and exactly the actions the
viewer may take (from the booking rules, never decided here)."""

from datetime import datetime, timedelta

from pesan.auth import Caller
from pesan.bookings import rules
from pesan.bookings.enums import Actor, BookingAction, BookingMode, BookingStatus
from pesan.bookings.schemas import BookingOut
from pesan.web import words
from pesan.web.i18n import gettext

# The contract's default answer windows (api.md), used when a booking carries no respondBy.
ANSWER_WINDOW = {
    BookingMode.now: timedelta(minutes=5),
    BookingMode.scheduled: timedelta(minutes=30),
}


def actor_of(booking: BookingOut, caller: Caller) -> Actor | None:
    if caller.id == booking.provider_id:
        return Actor.provider
    if caller.id == booking.customer_id:
        return Actor.booker
    return None  # an admin watching: no buttons


def actions_for(booking: BookingOut, caller: Caller) -> list[BookingAction]:
    actor = actor_of(booking, caller)
    if actor is None:
        return []
    return rules.allowed_actions(BookingStatus(booking.status), actor, booking.location.kind)


def respond_by(booking: BookingOut) -> datetime | None:
    """When the provider must have answered a pending request."""
    if booking.status != BookingStatus.pending:
        return None
    given: datetime | None = getattr(booking, "respond_by", None)
    if given is not None:
        return given
    deadline = booking.created_at + ANSWER_WINDOW[BookingMode(booking.mode)]
    return min(deadline, booking.start_at) if booking.mode == BookingMode.scheduled else deadline


def status_label(status: str) -> str:
    return gettext(words.STATUS[BookingStatus(status)])


def action_label(action: BookingAction) -> str:
    return gettext(words.ACTION[action])


def where(booking: BookingOut) -> str:
    location = booking.location
    label = gettext(words.LOCATION[location.kind])
    detail = location.room if location.kind in ("hotel", "villa") else location.address
    return f"{label}: {detail}" if detail else label
