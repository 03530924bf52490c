"""The booking state machine and Book Now's request rules, tested alone (no app, no database)."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pesan.bookings import rules
from pesan.bookings.enums import ACTIVE, FINAL, Actor, BookingMode, LocationKind
from pesan.bookings.enums import BookingAction as Action
from pesan.bookings.enums import BookingStatus as Status
from pesan.bookings.rules import (
    Effect,
    Facts,
    InvalidTransition,
    Outcome,
    Policy,
    RequestProblem,
    WrongActor,
    check_location,
    decide,
    resolve_start,
    respond_by,
    system_message,
)

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PROVIDER, BOOKER, SYSTEM, ADMIN = Actor.provider, Actor.booker, Actor.system, Actor.admin
POLICY = Policy()
ZONE = "Asia/Makassar"


def facts(
    status: Status,
    kind: str = "villa",
    *,
    start: datetime = NOW - timedelta(hours=1),
    mode: BookingMode = BookingMode.scheduled,
    eta: datetime | None = None,
    respond: datetime | None = NOW - timedelta(minutes=1),
) -> Facts:
    """A booking whose times let every time-bound rule through (its start long past)."""
    return Facts(
        status=status,
        mode=mode,
        location_kind=LocationKind(kind),
        start_at=start,
        end_at=start + timedelta(minutes=90),
        respond_by=respond,
        eta_at=eta,
    )


def move(action: Action, status: Status, actor: Actor, kind: str = "villa") -> Status:
    return decide(action, facts(status, kind), actor, NOW, POLICY).target


# ---- the state machine --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "source", "actor", "target"),
    [
        (Action.accept, Status.pending, PROVIDER, Status.accepted),
        (Action.decline, Status.pending, PROVIDER, Status.declined),
        (Action.decline, Status.pending, SYSTEM, Status.declined),
        (Action.on_the_way, Status.accepted, PROVIDER, Status.on_the_way),
        (Action.arrived, Status.on_the_way, PROVIDER, Status.arrived),
        (Action.cancel, Status.pending, BOOKER, Status.cancelled),
        (Action.cancel, Status.pending, PROVIDER, Status.cancelled),
        (Action.cancel, Status.accepted, BOOKER, Status.cancelled),
        (Action.cancel, Status.on_the_way, PROVIDER, Status.cancelled),
        (Action.complete, Status.accepted, PROVIDER, Status.completed),
        (Action.complete, Status.on_the_way, PROVIDER, Status.completed),
        (Action.complete, Status.arrived, PROVIDER, Status.completed),
        (Action.no_show, Status.accepted, PROVIDER, Status.no_show),
        (Action.no_show, Status.arrived, PROVIDER, Status.no_show),
        (Action.expire, Status.pending, SYSTEM, Status.expired),
    ],
)
def test_allowed_transitions(action: Action, source: Status, actor: Actor, target: Status) -> None:
    assert move(action, source, actor) is target


@pytest.mark.parametrize(
    ("action", "source"),
    [
        (Action.accept, Status.accepted),
        (Action.decline, Status.accepted),
        (Action.on_the_way, Status.pending),
        (Action.arrived, Status.accepted),
        (Action.cancel, Status.arrived),
        (Action.complete, Status.pending),
        (Action.no_show, Status.pending),
        (Action.expire, Status.accepted),
    ],
)
def test_a_change_the_status_does_not_allow_is_an_invalid_transition(
    action: Action, source: Status
) -> None:
    actor = next(iter(rules.TRANSITIONS[action].actors))
    with pytest.raises(InvalidTransition, match=source.value):
        move(action, source, actor, "home")


@pytest.mark.parametrize(
    ("action", "actor"),
    [
        (Action.accept, BOOKER),
        (Action.decline, BOOKER),
        (Action.on_the_way, BOOKER),
        (Action.arrived, BOOKER),
        (Action.complete, BOOKER),
        (Action.no_show, BOOKER),
        (Action.expire, PROVIDER),
        (Action.expire, BOOKER),
        (Action.cancel, SYSTEM),
        (Action.accept, ADMIN),
        (Action.cancel, ADMIN),
    ],
)
def test_wrong_actor_is_refused_whatever_the_status(action: Action, actor: Actor) -> None:
    for status in Status:
        with pytest.raises(WrongActor, match="Only the"):
            move(action, status, actor, "hotel")


def test_nobody_is_on_the_way_to_a_place_booking() -> None:
    with pytest.raises(InvalidTransition, match="place"):
        move(Action.on_the_way, Status.accepted, PROVIDER, "place")
    assert move(Action.on_the_way, Status.accepted, PROVIDER, "home") is Status.on_the_way


def test_active_and_final_statuses_split_every_status() -> None:
    assert set(Status) == ACTIVE | FINAL
    assert not ACTIVE & FINAL
    assert {
        Status.completed,
        Status.declined,
        Status.cancelled,
        Status.expired,
        Status.no_show,
    } == FINAL


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


def test_every_ending_frees_a_now_provider_and_every_answer_tells_the_chat() -> None:
    for action, transition in rules.TRANSITIONS.items():
        assert Effect.tell in transition.effects, action
        if transition.target in FINAL:
            assert Effect.release_provider in transition.effects, action
            assert Effect.withdraw_proposals in transition.effects, action
    assert Effect.decline_overlapping in rules.TRANSITIONS[Action.accept].effects
    assert Effect.offer_alternatives in rules.TRANSITIONS[Action.expire].effects


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
            new = move(action, status, actor, kind)
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
        move(action, status, actor)


@given(action=st.sampled_from(Action), status=st.sampled_from(Status), actor=st.sampled_from(Actor))
def test_the_actor_is_checked_before_the_status(
    action: Action, status: Status, actor: Actor
) -> None:
    if actor not in rules.TRANSITIONS[action].actors:
        with pytest.raises(WrongActor):
            move(action, status, actor, "home")


# ---- time: answer windows, no-shows ----------------------------------------------------------


def test_answer_windows() -> None:
    later = NOW + timedelta(days=2)
    assert respond_by(BookingMode.now, NOW, NOW, POLICY) == NOW + timedelta(minutes=5)
    assert respond_by(BookingMode.scheduled, NOW, later, POLICY) == NOW + timedelta(minutes=30)
    soon = NOW + timedelta(minutes=20)
    assert respond_by(BookingMode.scheduled, NOW, soon, POLICY) == soon  # never after the start


def test_a_request_expires_only_once_its_window_has_closed() -> None:
    window = facts(Status.pending, respond=NOW + timedelta(seconds=1))
    with pytest.raises(InvalidTransition, match="still has time"):
        decide(Action.expire, window, SYSTEM, NOW, POLICY)
    later = NOW + timedelta(seconds=1)
    assert decide(Action.expire, window, SYSTEM, later, POLICY).target is Status.expired


def test_an_expired_request_counts_against_nobody() -> None:
    outcome = decide(Action.expire, facts(Status.pending), SYSTEM, NOW, POLICY)
    assert outcome.counts_against is None and not outcome.late_cancellation


def test_a_no_show_only_after_the_grace_period_and_against_the_booker() -> None:
    start = NOW - timedelta(minutes=29)
    with pytest.raises(InvalidTransition, match="30 minutes after the start"):
        decide(Action.no_show, facts(Status.arrived, start=start), PROVIDER, NOW, POLICY)
    outcome = decide(
        Action.no_show,
        facts(Status.arrived, start=start),
        PROVIDER,
        start + timedelta(minutes=30),
        POLICY,
    )
    assert outcome.target is Status.no_show and outcome.counts_against is BOOKER


# ---- the one cancellation and lateness policy ---------------------------------------------------


def cancel(
    status: Status, actor: Actor, *, hours_before: float, eta: datetime | None = None
) -> Outcome:
    start = NOW + timedelta(hours=hours_before)
    return decide(Action.cancel, facts(status, start=start, eta=eta), actor, NOW, POLICY)


@pytest.mark.parametrize("actor", [BOOKER, PROVIDER])
def test_the_same_window_for_both_sides(actor: Actor) -> None:
    early = cancel(Status.accepted, actor, hours_before=2.01)
    assert not early.late_cancellation and early.counts_against is None
    late = cancel(Status.accepted, actor, hours_before=2)
    assert late.late_cancellation and late.counts_against is actor


@pytest.mark.parametrize("actor", [BOOKER, PROVIDER])
def test_a_request_not_yet_confirmed_is_cancelled_without_penalty(actor: Actor) -> None:
    outcome = cancel(Status.pending, actor, hours_before=0.5)
    assert not outcome.late_cancellation and outcome.counts_against is None


def test_a_provider_too_late_lets_the_customer_cancel_without_penalty() -> None:
    eta = NOW - timedelta(minutes=31)
    outcome = cancel(Status.on_the_way, BOOKER, hours_before=-1, eta=eta)
    assert not outcome.late_cancellation and outcome.counts_against is PROVIDER
    on_time = cancel(Status.on_the_way, BOOKER, hours_before=-1, eta=NOW - timedelta(minutes=29))
    assert on_time.late_cancellation and on_time.counts_against is BOOKER


@given(
    status=st.sampled_from([Status.pending, Status.accepted, Status.on_the_way]),
    actor=st.sampled_from([BOOKER, PROVIDER]),
    minutes=st.integers(min_value=-600, max_value=6000),
)
def test_a_cancellation_counts_against_at_most_the_late_side(
    status: Status, actor: Actor, minutes: int
) -> None:
    outcome = cancel(status, actor, hours_before=minutes / 60)
    if outcome.late_cancellation:
        assert outcome.counts_against is actor
    if status is Status.pending:
        assert outcome.counts_against is None


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


def test_system_messages_say_what_happened_in_the_providers_zone() -> None:
    def say(action: Action, status: Status, actor: Actor, **kw: object) -> str:
        f = facts(status, start=NOW + timedelta(days=1), eta=kw.pop("eta", None))  # type: ignore[arg-type]
        outcome = (
            decide(action, f, actor, NOW, POLICY)
            if action is not Action.expire
            else Outcome(Status.expired, ())
        )
        return system_message(action, f, outcome, ZONE, POLICY, actor=actor, now=NOW, **kw)  # type: ignore[arg-type]

    accepted = say(Action.accept, Status.pending, PROVIDER)
    assert accepted.startswith("Booking accepted for Wed 25 Nov 2026, 17:00 WITA.")
    assert "15:00 WITA" in accepted and "late cancellation" in accepted  # the policy, repeated
    assert say(Action.decline, Status.pending, PROVIDER, reason="Fully booked") == (
        "Booking declined. Reason: Fully booked"
    )
    eta = NOW + timedelta(minutes=25)
    assert say(Action.on_the_way, Status.accepted, PROVIDER, eta=eta) == (
        "On the way, arriving about 17:25 WITA (in 25 minutes)."
    )
    assert say(Action.cancel, Status.accepted, BOOKER).endswith("in time: without penalty.")
