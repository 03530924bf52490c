"""The booking's word lists. Each is defined once here and used by the CHECK constraints, the
JSON schemas (so OpenAPI publishes the same enum), the query parameters and the rules."""

from enum import StrEnum


class BookingStatus(StrEnum):
    pending = "pending"
    accepted = "accepted"
    on_the_way = "on_the_way"
    arrived = "arrived"
    completed = "completed"
    declined = "declined"
    cancelled = "cancelled"
    expired = "expired"
    no_show = "no_show"


class BookingAction(StrEnum):
    accept = "accept"
    decline = "decline"
    on_the_way = "on-the-way"
    arrived = "arrived"
    cancel = "cancel"
    complete = "complete"
    no_show = "no-show"
    expire = "expire"


class Actor(StrEnum):
    """Who moves a booking: one of its two parties, an admin, or the server itself."""

    provider = "provider"
    booker = "booker"
    admin = "admin"
    system = "system"


# The two sides of a booking: who proposes a new time, whom an ending counts against.
PARTIES = (Actor.booker, Actor.provider)


class ProposalStatus(StrEnum):
    pending = "pending"
    accepted = "accepted"
    declined = "declined"
    withdrawn = "withdrawn"


class BookingMode(StrEnum):
    now = "now"
    scheduled = "scheduled"


class LocationKind(StrEnum):
    place = "place"
    hotel = "hotel"
    villa = "villa"
    home = "home"


# A provider holds these: they block the provider's time and count against overlaps.
ACTIVE = frozenset(
    {
        BookingStatus.pending,
        BookingStatus.accepted,
        BookingStatus.on_the_way,
        BookingStatus.arrived,
    }
)
FINAL = frozenset(BookingStatus) - ACTIVE
