"""The booking state machine and Book Now's rules: pure functions over plain data.

This module is the only place that knows which status may follow which, and who may move it.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from pesan.bookings.enums import Actor, BookingAction, BookingStatus


@dataclass(frozen=True)
class Transition:
    sources: frozenset[BookingStatus]
    target: BookingStatus
    actors: frozenset[Actor]


TRANSITIONS: dict[BookingAction, Transition] = {
    BookingAction.accept: Transition(
        frozenset({BookingStatus.pending}), BookingStatus.accepted, frozenset({Actor.provider})
    ),
    BookingAction.decline: Transition(
        frozenset({BookingStatus.pending}), BookingStatus.declined, frozenset({Actor.provider})
    ),
    BookingAction.on_the_way: Transition(
        frozenset({BookingStatus.accepted}), BookingStatus.on_the_way, frozenset({Actor.provider})
    ),
    BookingAction.arrived: Transition(
        frozenset({BookingStatus.on_the_way}), BookingStatus.arrived, frozenset({Actor.provider})
    ),
    BookingAction.cancel: Transition(
        frozenset({BookingStatus.pending, BookingStatus.accepted, BookingStatus.on_the_way}),
        BookingStatus.cancelled,
        frozenset({Actor.provider, Actor.booker}),
    ),
    BookingAction.complete: Transition(
        frozenset({BookingStatus.accepted, BookingStatus.on_the_way, BookingStatus.arrived}),
        BookingStatus.completed,
        frozenset({Actor.provider}),
    ),
    BookingAction.expire: Transition(
        frozenset({BookingStatus.pending}), BookingStatus.expired, frozenset({Actor.system})
    ),
}


class WrongActor(Exception):
    pass


class InvalidTransition(Exception):
    pass


def decide(
    action: BookingAction, status: BookingStatus, actor: Actor, location_kind: str
) -> BookingStatus:
    """The status `action` moves a booking to, or why it may not.

    The actor is checked before the status: someone who may never do this learns nothing
    about the booking's state.
    """
    transition = TRANSITIONS[action]
    if actor not in transition.actors:
        who = " or ".join(sorted(a.value for a in transition.actors))
        raise WrongActor(f"Only the {who} can {action.value.replace('-', ' ')} a booking.")
    if action is BookingAction.on_the_way and location_kind == "place":
        raise InvalidTransition("The customer comes to the place: there is no 'on the way'.")
    if status not in transition.sources:
        raise InvalidTransition(
            f"A booking that is {status.value} cannot be moved by '{action.value}'."
        )
    return transition.target


class RequestProblem(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def check_location(kind: str, address: str | None, room: str | None) -> None:
    if kind in ("hotel", "villa") and not (room and room.strip()):
        raise RequestProblem("location.room", f"A {kind} booking needs the room.")
    if kind == "home" and not (address and address.strip()):
        raise RequestProblem("location.address", "A home booking needs the address.")


def resolve_start(mode: str, start_at: datetime | None, now: datetime) -> datetime:
    """When the treatment starts: `now` is as soon as possible; `scheduled` needs a future time."""
    if mode == "now":
        if start_at is not None and abs(start_at - now) > timedelta(minutes=15):
            raise RequestProblem("startAt", "A 'now' booking starts now; omit startAt.")
        return now
    if start_at is None:
        raise RequestProblem("startAt", "A scheduled booking needs startAt.")
    if start_at <= now:
        raise RequestProblem("startAt", "startAt must be in the future.")
    if start_at > now + timedelta(days=366):
        raise RequestProblem("startAt", "startAt must be within a year.")
    return start_at


def system_message(
    action: BookingAction, *, reason: str | None = None, eta_minutes: int | None = None
) -> str:
    """The line posted into the booking's chat when its status changes."""
    text = {
        BookingAction.accept: "Booking accepted.",
        BookingAction.decline: "Booking declined.",
        BookingAction.on_the_way: "On the way.",
        BookingAction.arrived: "Arrived.",
        BookingAction.cancel: "Booking cancelled.",
        BookingAction.complete: "Booking completed.",
        BookingAction.expire: "Booking expired: the provider did not answer in time.",
    }[action]
    if eta_minutes is not None:
        text = f"On the way, arriving in about {eta_minutes} minutes."
    if reason:
        text = f"{text} Reason: {reason}"
    return text


def allowed_actions(status: BookingStatus, actor: Actor, location_kind: str) -> list[BookingAction]:
    """What this actor may do to a booking now: exactly the buttons its card shows."""
    allowed = []
    for action, transition in TRANSITIONS.items():
        if actor not in transition.actors or status not in transition.sources:
            continue
        if action is BookingAction.on_the_way and location_kind == "place":
            continue
        allowed.append(action)
    return allowed
