"""The booking state machine and Book Now's request rules, tested alone (no app, no database)."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pesan.bookings import rules
from pesan.bookings.enums import ACTIVE, FINAL, Actor, LocationKind
from pesan.bookings.enums import BookingAction as Action
from pesan.bookings.enums import BookingStatus as Status
from pesan.bookings.rules import (
    InvalidTransition,
    RequestProblem,
    WrongActor,
    check_location,
    decide,
    resolve_start,
    system_message,
)

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PROVIDER, BOOKER, SYSTEM = Actor.provider, Actor.booker, Actor.system


# ---- the state machine --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "source", "actor", "target"),
    [
        (Action.accept, Status.pending, PROVIDER, Status.accepted),
        (Action.decline, Status.pending, PROVIDER, Status.declined),
        (Action.on_the_way, Status.accepted, PROVIDER, Status.on_the_way),
        (Action.arrived, Status.on_the_way, PROVIDER, Status.arrived),
        (Action.cancel, Status.pending, BOOKER, Status.cancelled),
        (Action.cancel, Status.pending, PROVIDER, Status.cancelled),
        (Action.cancel, Status.accepted, BOOKER, Status.cancelled),
        (Action.cancel, Status.on_the_way, PROVIDER, Status.cancelled),
        (Action.complete, Status.accepted, PROVIDER, Status.completed),
        (Action.complete, Status.on_the_way, PROVIDER, Status.completed),
        (Action.complete, Status.arrived, PROVIDER, Status.completed),
        (Action.expire, Status.pending, SYSTEM, Status.expired),
    ],
)
def test_allowed_transitions(action: Action, source: Status, actor: Actor, target: Status) -> None:
    assert decide(action, source, actor, "villa") is target


@pytest.mark.parametrize(
    ("action", "source"),
    [
        (Action.accept, Status.accepted),
        (Action.decline, Status.accepted),
        (Action.on_the_way, Status.pending),
        (Action.arrived, Status.accepted),
        (Action.cancel, Status.arrived),
        (Action.complete, Status.pending),
        (Action.expire, Status.accepted),
    ],
)
def test_a_change_the_status_does_not_allow_is_an_invalid_transition(
    action: Action, source: Status
) -> None:
    actor = next(iter(rules.TRANSITIONS[action].actors))
    with pytest.raises(InvalidTransition, match=source.value):
        decide(action, source, actor, "home")


@pytest.mark.parametrize(
    ("action", "actor"),
    [
        (Action.accept, BOOKER),
        (Action.decline, BOOKER),
        (Action.on_the_way, BOOKER),
        (Action.arrived, BOOKER),
        (Action.complete, BOOKER),
        (Action.expire, PROVIDER),
        (Action.expire, BOOKER),
        (Action.cancel, SYSTEM),
    ],
)
def test_wrong_actor_is_refused_whatever_the_status(action: Action, actor: Actor) -> None:
    for status in Status:
        with pytest.raises(WrongActor, match="Only the"):
            decide(action, status, actor, "hotel")


def test_nobody_is_on_the_way_to_a_place_booking() -> None:
    with pytest.raises(InvalidTransition, match="place"):
        decide(Action.on_the_way, Status.accepted, PROVIDER, "place")
    assert decide(Action.on_the_way, Status.accepted, PROVIDER, "home") is Status.on_the_way


def test_active_and_final_statuses_split_every_status() -> None:
    assert set(Status) == ACTIVE | FINAL
    assert not ACTIVE & FINAL
    assert {Status.completed, Status.declined, Status.cancelled, Status.expired} == FINAL


def test_every_status_is_reachable_from_pending() -> None:
    reached = {Status.pending}
    frontier = [Status.pending]
    while frontier:
        status = frontier.pop()
        for transition in rules.TRANSITIONS.values():
            if status in transition.sources and transition.target not in reached:
                reached.add(transition.target)
                frontier.append(transition.target)
    assert reached == set(Status)


steps = st.lists(
    st.tuples(st.sampled_from(Action), st.sampled_from(Actor)), min_size=0, max_size=30
)
kinds = st.sampled_from([k.value for k in LocationKind])


@given(steps=steps, kind=kinds)
def test_no_sequence_of_actions_ever_leaves_a_final_status(
    steps: list[tuple[Action, Actor]], kind: str
) -> None:
    status = Status.pending
    for action, actor in steps:
        try:
            new = decide(action, status, actor, kind)
        except (WrongActor, InvalidTransition):
            continue
        assert status not in FINAL, f"{action} moved a {status} booking to {new}"
        transition = rules.TRANSITIONS[action]
        assert status in transition.sources and actor in transition.actors
        assert new is transition.target
        assert not (action is Action.on_the_way and kind == "place")
        status = new


@given(
    action=st.sampled_from(Action),
    status=st.sampled_from(sorted(FINAL)),
    actor=st.sampled_from(Actor),
)
def test_a_final_booking_refuses_every_action(action: Action, status: Status, actor: Actor) -> None:
    with pytest.raises((WrongActor, InvalidTransition)):
        decide(action, status, actor, "villa")


@given(action=st.sampled_from(Action), status=st.sampled_from(Status), actor=st.sampled_from(Actor))
def test_the_actor_is_checked_before_the_status(
    action: Action, status: Status, actor: Actor
) -> None:
    if actor not in rules.TRANSITIONS[action].actors:
        with pytest.raises(WrongActor):
            decide(action, status, actor, "home")


# ---- Book Now's request rules -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "address", "room", "field"),
    [
        ("hotel", None, None, "location.room"),
        ("villa", "Jl. Raya Ubud 1", "  ", "location.room"),
        ("home", None, "12", "location.address"),
        ("home", "", None, "location.address"),
    ],
)
def test_location_needs_its_room_or_address(
    kind: str, address: str | None, room: str | None, field: str
) -> None:
    with pytest.raises(RequestProblem) as caught:
        check_location(kind, address, room)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("kind", "address", "room"),
    [
        ("place", None, None),
        ("hotel", None, "204"),
        ("villa", None, "Villa 3"),
        ("home", "Jl. Hanoman 5, Ubud", None),
    ],
)
def test_complete_locations_pass(kind: str, address: str | None, room: str | None) -> None:
    check_location(kind, address, room)


def test_now_starts_at_the_request_time() -> None:
    assert resolve_start("now", None, NOW) == NOW
    assert resolve_start("now", NOW + timedelta(minutes=5), NOW) == NOW


def test_now_with_a_far_start_is_refused() -> None:
    with pytest.raises(RequestProblem) as caught:
        resolve_start("now", NOW + timedelta(hours=3), NOW)
    assert caught.value.field == "startAt"


@pytest.mark.parametrize(
    "start_at",
    [None, NOW, NOW - timedelta(seconds=1), NOW + timedelta(days=367)],
    ids=["missing", "now", "past", "beyond-a-year"],
)
def test_scheduled_needs_a_future_start_within_a_year(start_at: datetime | None) -> None:
    with pytest.raises(RequestProblem) as caught:
        resolve_start("scheduled", start_at, NOW)
    assert caught.value.field == "startAt"


@given(minutes=st.integers(min_value=1, max_value=365 * 24 * 60))
def test_scheduled_keeps_any_future_start(minutes: int) -> None:
    start_at = NOW + timedelta(minutes=minutes)
    assert resolve_start("scheduled", start_at, NOW) == start_at


def test_system_messages_say_what_happened() -> None:
    assert system_message(Action.accept) == "Booking accepted."
    assert system_message(Action.decline, reason="Fully booked") == (
        "Booking declined. Reason: Fully booked"
    )
    assert "25 minutes" in system_message(Action.on_the_way, eta_minutes=25)
    assert all(system_message(action) for action in Action)
