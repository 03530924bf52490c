"""The actions a booking card offers come from the rules: each one offered is one `decide`
accepts for that viewer now, and every one it accepts is offered."""

from datetime import UTC, datetime, timedelta

import pytest

from pesan.bookings import rules
from pesan.bookings.enums import Actor, BookingAction, BookingMode, BookingStatus, LocationKind

START = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
POLICY = rules.Policy()


def facts(status: BookingStatus, kind: LocationKind) -> rules.Facts:
    return rules.Facts(
        status=status,
        mode=BookingMode.scheduled,
        location_kind=kind,
        start_at=START,
        end_at=START + timedelta(minutes=90),
        respond_by=START - timedelta(hours=1),
    )


@pytest.mark.parametrize("now", [START - timedelta(days=1), START + timedelta(hours=1)])
@pytest.mark.parametrize("kind", list(LocationKind))
@pytest.mark.parametrize("actor", list(Actor))
@pytest.mark.parametrize("status", list(BookingStatus))
def test_allowed_actions_are_exactly_what_decide_accepts(status, actor, kind, now):
    booking = facts(status, kind)
    offered = rules.allowed_actions(booking, actor, now, POLICY)
    for action in BookingAction:
        try:
            rules.decide(action, booking, actor, now, POLICY)
            accepted = True
        except (rules.WrongActor, rules.InvalidTransition):
            accepted = False
        assert (action in offered) == accepted, (action, status, actor, kind, now)


def test_a_pending_request_offers_the_provider_accept_decline_cancel():
    before = START - timedelta(days=1)
    pending = facts(BookingStatus.pending, LocationKind.villa)
    assert rules.allowed_actions(pending, Actor.provider, before, POLICY) == [
        BookingAction.accept,
        BookingAction.decline,
        BookingAction.cancel,
    ]
    at_the_place = facts(BookingStatus.accepted, LocationKind.place)
    assert rules.allowed_actions(at_the_place, Actor.provider, before, POLICY) == [
        BookingAction.cancel,
        BookingAction.complete,
    ]
