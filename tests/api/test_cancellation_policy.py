"""One cancellation and lateness policy for both sides, shown in the Book Now answer and
repeated in the chat, with every time in the provider's zone."""

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Account, Api, FakeClock, parse_time
from tests.problems import assert_problem


@pytest.fixture
def customer(api: Api) -> Account:
    return api.register("customer")


@pytest.fixture
def therapist(api: Api) -> Account:
    return api.provider("therapist")


def scheduled(api: Api, clock: FakeClock, customer: Account, therapist: Account) -> dict[str, Any]:
    answer = api.book(
        customer, therapist, mode="scheduled", startAt=api.slot(therapist, after=clock.at)
    )
    r = api.act(therapist, answer["booking"]["id"], "accept")
    assert r.status_code == 200, r.text
    return answer


def last_system_text(client: TestClient, who: Account, booking: dict[str, Any]) -> str:
    r = client.get(
        f"/api/v1/conversations/{booking['conversationId']}/messages", headers=who.headers
    )
    return str([m for m in r.json()["items"] if m["isSystemMessage"]][-1]["content"])


def test_the_policy_comes_with_the_booking_and_its_card(
    api: Api, clock: FakeClock, customer: Account, therapist: Account
) -> None:
    answer = api.book(
        customer, therapist, mode="scheduled", startAt=api.slot(therapist, after=clock.at)
    )
    start = parse_time(answer["booking"]["startAt"])
    policy = answer["policy"]
    assert parse_time(policy["lateCancellationFrom"]) == start - timedelta(hours=2)
    assert parse_time(policy["noShowFrom"]) == start + timedelta(minutes=30)
    assert policy["providerLateMinutes"] == 30
    assert "WITA" in policy["summary"] and "late cancellation" in policy["summary"]
    card = answer["message"]["content"]
    assert "Policy: " + policy["summary"] in card and "Answer by: " in card


def test_a_customer_cancelling_in_time_pays_nothing(
    api: Api, client: TestClient, clock: FakeClock, customer: Account, therapist: Account
) -> None:
    answer = scheduled(api, clock, customer, therapist)
    r = api.act(customer, answer["booking"]["id"], "cancel", {"reason": "Plans changed"})
    booking = r.json()
    assert booking["lateCancellation"] is False and booking["countsAgainst"] is None
    assert booking["endedBy"] == "booker"
    assert "in time: without penalty" in last_system_text(client, therapist, booking)


@pytest.mark.parametrize("side", ["customer", "provider"])
def test_cancelling_late_counts_against_whoever_cancels(
    api: Api,
    client: TestClient,
    clock: FakeClock,
    customer: Account,
    therapist: Account,
    side: str,
) -> None:
    answer = scheduled(api, clock, customer, therapist)
    clock.at = parse_time(answer["policy"]["lateCancellationFrom"]) + timedelta(minutes=1)
    who = customer if side == "customer" else therapist
    booking = api.act(who, answer["booking"]["id"], "cancel").json()
    assert booking["lateCancellation"] is True
    assert booking["countsAgainst"] == ("booker" if side == "customer" else "provider")
    assert "a late cancellation" in last_system_text(client, customer, booking)


def test_a_provider_too_late_lets_the_customer_cancel_without_penalty(
    api: Api, client: TestClient, clock: FakeClock, customer: Account, therapist: Account
) -> None:
    booking = api.book(customer, therapist)["booking"]
    assert api.act(therapist, booking["id"], "accept").status_code == 200
    assert api.act(therapist, booking["id"], "on-the-way", {"etaMinutes": 20}).status_code == 200
    clock.advance(minutes=20 + 31)
    cancelled = api.act(customer, booking["id"], "cancel").json()
    assert cancelled["lateCancellation"] is False and cancelled["countsAgainst"] == "provider"
    assert "more than 30 minutes late" in last_system_text(client, therapist, cancelled)


def test_a_no_show_after_the_grace_period_counts_against_the_booker(
    api: Api, client: TestClient, clock: FakeClock, customer: Account, therapist: Account
) -> None:
    answer = scheduled(api, clock, customer, therapist)
    booking_id = answer["booking"]["id"]
    clock.at = parse_time(answer["policy"]["noShowFrom"]) - timedelta(seconds=1)
    assert_problem(api.act(therapist, booking_id, "no-show"), 409, "invalid_transition")
    clock.advance(seconds=1)
    assert_problem(api.act(customer, booking_id, "no-show"), 403, "wrong_actor")
    r = api.act(therapist, booking_id, "no-show")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "no_show" and r.json()["countsAgainst"] == "booker"
    assert last_system_text(client, customer, r.json()).startswith("No-show recorded")


def test_a_reminder_comes_once_before_an_accepted_booking(
    api: Api,
    app: Any,
    client: TestClient,
    clock: FakeClock,
    customer: Account,
    therapist: Account,
) -> None:
    from tests.conftest import run_job

    answer = scheduled(api, clock, customer, therapist)
    start = parse_time(answer["booking"]["startAt"])
    clock.at = start - timedelta(hours=2, minutes=1)
    assert run_job(app, "send-reminders") == 0
    clock.advance(minutes=1)
    assert run_job(app, "send-reminders") == 1
    assert run_job(app, "send-reminders") == 0
    text = last_system_text(client, customer, answer["booking"])
    assert text.startswith("Reminder: Balinese massage with ") and "(in 2 hours)" in text
