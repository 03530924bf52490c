"""The booking state machine and Book Now's rules: pure functions over plain data.

This module is the only place that knows which status may follow which, and who may move it.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Status(StrEnum):
    pending = "pending"
    accepted = "accepted"
    on_the_way = "on_the_way"
    arrived = "arrived"
    completed = "completed"
    declined = "declined"
    cancelled = "cancelled"
    expired = "expired"


class Action(StrEnum):
    accept = "accept"
    decline = "decline"
    on_the_way = "on-the-way"
    arrived = "arrived"
    cancel = "cancel"
    complete = "complete"
    expire = "expire"


class Actor(StrEnum):
    provider = "provider"
    booker = "booker"
    system = "system"


MODES = ("now", "scheduled")
LOCATION_KINDS = ("place", "hotel", "villa", "home")
ACTIVE = frozenset({Status.pending, Status.accepted, Status.on_the_way, Status.arrived})
FINAL = frozenset(Status) - ACTIVE


@dataclass(frozen=True)
class Transition:
    sources: frozenset[Status]
    target: Status
    actors: frozenset[Actor]


TRANSITIONS: dict[Action, Transition] = {
    Action.accept: Transition(
        frozenset({Status.pending}), Status.accepted, frozenset({Actor.provider})
    ),
    Action.decline: Transition(
        frozenset({Status.pending}), Status.declined, frozenset({Actor.provider})
    ),
    Action.on_the_way: Transition(
        frozenset({Status.accepted}), Status.on_the_way, frozenset({Actor.provider})
    ),
    Action.arrived: Transition(
        frozenset({Status.on_the_way}), Status.arrived, frozenset({Actor.provider})
    ),
    Action.cancel: Transition(
        frozenset({Status.pending, Status.accepted, Status.on_the_way}),
        Status.cancelled,
        frozenset({Actor.provider, Actor.booker}),
    ),
    Action.complete: Transition(
        frozenset({Status.accepted, Status.on_the_way, Status.arrived}),
        Status.completed,
        frozenset({Actor.provider}),
    ),
    Action.expire: Transition(
        frozenset({Status.pending}), Status.expired, frozenset({Actor.system})
    ),
}


class WrongActor(Exception):
    pass


class InvalidTransition(Exception):
    pass


def decide(action: Action, status: Status, actor: Actor, location_kind: str) -> Status:
    """The status `action` moves a booking to, or why it may not.

    The actor is checked before the status: someone who may never do this learns nothing
    about the booking's state.
    """
    transition = TRANSITIONS[action]
    if actor not in transition.actors:
        who = " or ".join(sorted(a.value for a in transition.actors))
        raise WrongActor(f"Only the {who} can {action.value.replace('-', ' ')} a booking.")
    if action is Action.on_the_way and location_kind == "place":
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
    action: Action, *, reason: str | None = None, eta_minutes: int | None = None
) -> str:
    """The line posted into the booking's chat when its status changes."""
    text = {
        Action.accept: "Booking accepted.",
        Action.decline: "Booking declined.",
        Action.on_the_way: "On the way.",
        Action.arrived: "Arrived.",
        Action.cancel: "Booking cancelled.",
        Action.complete: "Booking completed.",
        Action.expire: "Booking expired: the provider did not answer in time.",
    }[action]
    if eta_minutes is not None:
        text = f"On the way, arriving in about {eta_minutes} minutes."
    if reason:
        text = f"{text} Reason: {reason}"
    return text
