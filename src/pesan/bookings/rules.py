"""The booking state machine, the answer windows, and the one cancellation and lateness
policy for both sides: pure functions over plain data (no I/O, `now` is an argument).

This module is the only place that knows which status may follow which, who may move it,
and what else each move sets off (its `effects`, carried out by the service).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pesan.bookings.enums import (
    ACTIVE,
    FINAL,
    Actor,
    BookingAction,
    BookingMode,
    BookingStatus,
    LocationKind,
)
from pesan.config import Settings
from pesan.timeutil import clock_in, day_and_clock_in

__all__ = ["ACTIVE", "FINAL"]


@dataclass(frozen=True)
class Policy:
    """The marketplace's timing rules, from settings (docs/bookings.md)."""

    answer_now: timedelta = timedelta(minutes=5)
    answer_scheduled: timedelta = timedelta(minutes=30)
    late_cancel_window: timedelta = timedelta(hours=2)
    no_show_grace: timedelta = timedelta(minutes=30)
    provider_late: timedelta = timedelta(minutes=30)
    reminder_lead: timedelta = timedelta(hours=2)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Policy":
        return cls(
            answer_now=timedelta(seconds=settings.answer_now_seconds),
            answer_scheduled=timedelta(seconds=settings.answer_scheduled_seconds),
            late_cancel_window=timedelta(minutes=settings.late_cancel_window_minutes),
            no_show_grace=timedelta(minutes=settings.no_show_grace_minutes),
            provider_late=timedelta(minutes=settings.provider_late_minutes),
            reminder_lead=timedelta(minutes=settings.reminder_lead_minutes),
        )


class Effect(StrEnum):
    """What a move sets off besides the new status; the service carries each one out."""

    tell = "tell"  # a system message in the booking's chat
    notify_admin = "notify_admin"  # a line in the admin inbox
    hold_provider = "hold_provider"  # a `now` provider stays busy until the expected end
    release_provider = "release_provider"  # a `now` provider is available again
    decline_overlapping = "decline_overlapping"  # other requests for the same time end
    offer_alternatives = "offer_alternatives"  # other providers named in the chat
    withdraw_proposals = "withdraw_proposals"  # an open reschedule proposal ends with it


@dataclass(frozen=True)
class Transition:
    sources: frozenset[BookingStatus]
    target: BookingStatus
    actors: frozenset[Actor]
    effects: tuple[Effect, ...]


S = BookingStatus
_ENDS = (Effect.tell, Effect.release_provider, Effect.withdraw_proposals)

TRANSITIONS: dict[BookingAction, Transition] = {
    BookingAction.accept: Transition(
        frozenset({S.pending}),
        S.accepted,
        frozenset({Actor.provider}),
        (Effect.tell, Effect.hold_provider, Effect.decline_overlapping),
    ),
    BookingAction.decline: Transition(
        frozenset({S.pending}), S.declined, frozenset({Actor.provider, Actor.system}), _ENDS
    ),
    BookingAction.on_the_way: Transition(
        frozenset({S.accepted}),
        S.on_the_way,
        frozenset({Actor.provider}),
        (Effect.tell, Effect.hold_provider),
    ),
    BookingAction.arrived: Transition(
        frozenset({S.on_the_way}), S.arrived, frozenset({Actor.provider}), (Effect.tell,)
    ),
    BookingAction.cancel: Transition(
        frozenset({S.pending, S.accepted, S.on_the_way}),
        S.cancelled,
        frozenset({Actor.provider, Actor.booker}),
        (*_ENDS, Effect.notify_admin),
    ),
    BookingAction.complete: Transition(
        frozenset({S.accepted, S.on_the_way, S.arrived}),
        S.completed,
        frozenset({Actor.provider}),
        _ENDS,
    ),
    BookingAction.no_show: Transition(
        frozenset({S.accepted, S.on_the_way, S.arrived}),
        S.no_show,
        frozenset({Actor.provider}),
        (*_ENDS, Effect.notify_admin),
    ),
    BookingAction.expire: Transition(
        frozenset({S.pending}),
        S.expired,
        frozenset({Actor.system}),
        (*_ENDS, Effect.notify_admin, Effect.offer_alternatives),
    ),
}


@dataclass(frozen=True)
class Facts:
    """What the rules need to know about a booking."""

    status: BookingStatus
    mode: BookingMode
    location_kind: LocationKind
    start_at: datetime
    end_at: datetime
    respond_by: datetime | None = None
    eta_at: datetime | None = None


@dataclass(frozen=True)
class Outcome:
    target: BookingStatus
    effects: tuple[Effect, ...]
    late_cancellation: bool = False
    counts_against: Actor | None = None
    excuse: str | None = None  # why a cancellation counts against nobody, said in the chat


class WrongActor(Exception):
    pass


class InvalidTransition(Exception):
    pass


def decide(
    action: BookingAction, facts: Facts, actor: Actor, now: datetime, policy: Policy
) -> Outcome:
    """What `action` by `actor` does to a booking now, or why it may not.

    The actor is checked before the status: someone who may never do this learns nothing
    about the booking's state.
    """
    transition = TRANSITIONS[action]
    if actor not in transition.actors:
        who = " or ".join(sorted(a.value for a in transition.actors if a is not Actor.system))
        raise WrongActor(
            f"Only the {who or 'server'} can {action.value.replace('-', ' ')} a booking."
        )
    if action is BookingAction.on_the_way and facts.location_kind == LocationKind.place:
        raise InvalidTransition("The customer comes to the place: there is no 'on the way'.")
    if facts.status not in transition.sources:
        raise InvalidTransition(
            f"A booking that is {facts.status.value} cannot be moved by '{action.value}'."
        )
    if action is BookingAction.expire and (facts.respond_by is None or now < facts.respond_by):
        raise InvalidTransition("The provider still has time to answer.")
    if action is BookingAction.no_show and now < no_show_from(facts, policy):
        raise InvalidTransition(
            "A no-show can be recorded only "
            f"{_minutes(policy.no_show_grace)} minutes after the start."
        )
    if action is BookingAction.cancel:
        return _cancellation(transition, facts, actor, now, policy)
    if action is BookingAction.no_show:
        return Outcome(transition.target, transition.effects, counts_against=Actor.booker)
    return Outcome(transition.target, transition.effects)


def _cancellation(
    transition: Transition, facts: Facts, actor: Actor, now: datetime, policy: Policy
) -> Outcome:
    """The same policy for both sides: cancelling a confirmed booking close to its start is
    late and counts against whoever cancels, unless the provider is late themselves."""
    if facts.status is BookingStatus.pending:
        return Outcome(transition.target, transition.effects, excuse="it was not confirmed yet")
    if actor is Actor.booker and provider_is_late(facts, now, policy):
        return Outcome(
            transition.target,
            transition.effects,
            counts_against=Actor.provider,
            excuse=f"the provider is more than {_minutes(policy.provider_late)} minutes late",
        )
    if now >= late_cancellation_from(facts, policy):
        return Outcome(
            transition.target, transition.effects, late_cancellation=True, counts_against=actor
        )
    return Outcome(transition.target, transition.effects)


def late_cancellation_from(facts: Facts, policy: Policy) -> datetime:
    return facts.start_at - policy.late_cancel_window


def no_show_from(facts: Facts, policy: Policy) -> datetime:
    return facts.start_at + policy.no_show_grace


def provider_is_late(facts: Facts, now: datetime, policy: Policy) -> bool:
    """On the way (or accepted) and past the announced arrival, or the start, by too much."""
    if facts.status not in (BookingStatus.accepted, BookingStatus.on_the_way):
        return False
    expected = facts.eta_at or (facts.start_at if facts.mode == BookingMode.scheduled else None)
    return expected is not None and now > expected + policy.provider_late


def respond_by(
    mode: BookingMode, requested_at: datetime, start_at: datetime, policy: Policy
) -> datetime:
    """When the provider must have answered (for `scheduled`: never after the start)."""
    if mode == BookingMode.now:
        return requested_at + policy.answer_now
    return min(requested_at + policy.answer_scheduled, start_at)


def expected_end(facts: Facts, now: datetime, duration: timedelta) -> datetime:
    """When a `now` provider should be free again: the treatment after the arrival."""
    arrival = facts.eta_at or max(facts.start_at, now)
    return arrival + duration


class RequestProblem(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def check_location(kind: str, address: str | None, room: str | None) -> None:
    if kind in (LocationKind.hotel, LocationKind.villa) and not (room and room.strip()):
        raise RequestProblem("location.room", f"A {kind} booking needs the room.")
    if kind == LocationKind.home and not (address and address.strip()):
        raise RequestProblem("location.address", "A home booking needs the address.")


def resolve_start(mode: str, start_at: datetime | None, now: datetime) -> datetime:
    """When the treatment starts: `now` is as soon as possible; `scheduled` needs a future time."""
    if mode == BookingMode.now:
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


# ---- what the chat says -------------------------------------------------------------------


def policy_summary(facts: Facts, policy: Policy, zone: str) -> str:
    """The policy as both sides read it, with this booking's times in the provider's zone."""
    parts = []
    if facts.mode == BookingMode.scheduled:
        parts.append(
            f"Cancelling after {clock_in(late_cancellation_from(facts, policy), zone)} "
            f"({_minutes(policy.late_cancel_window)} minutes before the start) is recorded "
            "as a late cancellation, for either side."
        )
    else:
        parts.append(
            "Once accepted, cancelling is recorded as a late cancellation, for either side."
        )
    parts.append(
        f"If the provider is more than {_minutes(policy.provider_late)} minutes late, the "
        "customer may cancel without penalty."
    )
    if facts.mode == BookingMode.scheduled:
        parts.append(
            f"A no-show can be recorded from {clock_in(no_show_from(facts, policy), zone)}."
        )
    else:
        parts.append(
            f"A no-show can be recorded {_minutes(policy.no_show_grace)} minutes after arrival."
        )
    return " ".join(parts)


def system_message(
    action: BookingAction,
    facts: Facts,
    outcome: Outcome,
    zone: str,
    policy: Policy,
    *,
    actor: Actor,
    now: datetime,
    reason: str | None = None,
) -> str:
    """The line posted into the booking's chat when its status changes."""
    when = day_and_clock_in(facts.start_at, zone)
    match action:
        case BookingAction.accept if facts.mode == BookingMode.now:
            text = "Booking accepted. " + policy_summary(facts, policy, zone)
        case BookingAction.accept:
            text = f"Booking accepted for {when}. " + policy_summary(facts, policy, zone)
        case BookingAction.decline if actor is Actor.system:
            text = (
                "Booking declined automatically: "
                "the provider accepted another booking at this time."
            )
        case BookingAction.decline:
            text = "Booking declined."
        case BookingAction.on_the_way:
            assert facts.eta_at is not None
            minutes = max(1, round((facts.eta_at - now).total_seconds() / 60))
            text = (
                f"On the way, arriving about {clock_in(facts.eta_at, zone)} (in {minutes} minutes)."
            )
        case BookingAction.arrived:
            text = "Arrived."
        case BookingAction.cancel:
            who = "the customer" if actor is Actor.booker else "the provider"
            if outcome.late_cancellation:
                text = (
                    f"Booking cancelled by {who}: a late cancellation "
                    f"(after {clock_in(late_cancellation_from(facts, policy), zone)})."
                )
            elif outcome.excuse:
                text = f"Booking cancelled by {who}, without penalty: {outcome.excuse}."
            else:
                text = f"Booking cancelled by {who}, in time: without penalty."
        case BookingAction.complete:
            text = "Booking completed."
        case BookingAction.no_show:
            text = (
                "No-show recorded: the customer was not there "
                f"{_minutes(policy.no_show_grace)} minutes after the start "
                f"({clock_in(facts.start_at, zone)})."
            )
        case BookingAction.expire:
            assert facts.respond_by is not None
            text = (
                "Booking expired: the provider did not answer by "
                f"{clock_in(facts.respond_by, zone)}. This counts against nobody."
            )
    if reason:
        text = f"{text} Reason: {reason}"
    return text


def _minutes(span: timedelta) -> int:
    return int(span.total_seconds() // 60)


def allowed_actions(
    facts: Facts, actor: Actor, now: datetime, policy: Policy
) -> list[BookingAction]:
    """What this actor may do to a booking now: exactly the buttons its card shows."""
    allowed = []
    for action in TRANSITIONS:
        try:
            decide(action, facts, actor, now, policy)
        except (WrongActor, InvalidTransition):
            continue
        allowed.append(action)
    return allowed
