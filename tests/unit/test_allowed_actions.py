"""The actions a booking card offers come from the state machine: each one is allowed, and
every allowed one is offered."""

import pytest

from pesan.bookings import rules
from pesan.bookings.enums import Actor, BookingAction, BookingStatus, LocationKind


@pytest.mark.parametrize("kind", list(LocationKind))
@pytest.mark.parametrize("actor", [Actor.provider, Actor.booker, Actor.admin])
@pytest.mark.parametrize("status", list(BookingStatus))
def test_allowed_actions_are_exactly_what_decide_accepts(status, actor, kind):
    offered = rules.allowed_actions(status, actor, kind)
    for action in BookingAction:
        try:
            rules.decide(action, status, actor, kind)
            accepted = True
        except (rules.WrongActor, rules.InvalidTransition):
            accepted = False
        assert (action in offered) == accepted, (action, status, actor, kind)


def test_a_pending_request_offers_the_provider_accept_decline_cancel():
    offered = rules.allowed_actions(BookingStatus.pending, Actor.provider, "villa")
    assert offered == [BookingAction.accept, BookingAction.decline, BookingAction.cancel]
    assert rules.allowed_actions(BookingStatus.accepted, Actor.provider, "place") == [
        BookingAction.cancel,
        BookingAction.complete,
    ]
