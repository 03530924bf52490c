"""Presence follows work: a `now` request makes its provider busy until the expected end, and
its end makes them available again, unless they chose otherwise meanwhile."""

from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import Account, Api, FakeClock, parse_time, run_job
from tests.problems import assert_problem


@pytest.fixture
def customer(api: Api) -> Account:
    return api.register("customer")


@pytest.fixture
def therapist(api: Api) -> Account:
    return api.provider("therapist")


def profile(client: TestClient, provider: Account) -> dict[str, Any]:
    r = client.get(f"/api/v1/providers/{provider.id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def listed_available(client: TestClient) -> list[str]:
    r = client.get("/api/v1/providers?presence=available")
    return [p["id"] for p in r.json()["items"]]


def set_presence(client: TestClient, provider: Account, presence: str) -> None:
    r = client.put(
        "/api/v1/providers/me/presence", headers=provider.headers, json={"presence": presence}
    )
    assert r.status_code == 200, r.text


def test_a_now_request_makes_the_provider_busy_until_its_expected_end(
    api: Api, client: TestClient, clock: FakeClock, customer: Account, therapist: Account
) -> None:
    booking = api.book(customer, therapist)["booking"]
    shown = profile(client, therapist)
    assert shown["presence"] == "busy"
    assert parse_time(shown["busyUntil"]) == clock.at + timedelta(minutes=90)
    assert therapist.id not in listed_available(client)
    r = client.post(
        "/api/v1/bookings", headers=api.register("hotel").headers, json=api.book_body(therapist)
    )
    assert_problem(r, 409, "provider_unavailable")
    assert booking["status"] == "pending"


@pytest.mark.parametrize(
    ("steps", "who"),
    [
        (("decline",), "provider"),
        (("cancel",), "customer"),
        (("accept", "complete"), "provider"),
        (("accept", "on-the-way", "arrived", "complete"), "provider"),
        (("accept", "cancel"), "provider"),
    ],
    ids=lambda v: ">".join(v) if isinstance(v, tuple) else v,
)
def test_the_end_of_the_work_makes_them_available_again(
    api: Api,
    client: TestClient,
    customer: Account,
    therapist: Account,
    steps: tuple[str, ...],
    who: str,
) -> None:
    booking = api.book(customer, therapist)["booking"]
    for step in steps:
        actor = customer if (step == "cancel" and who == "customer") else therapist
        body = {"etaMinutes": 20} if step == "on-the-way" else None
        r = api.act(actor, booking["id"], step, body)
        assert r.status_code == 200, r.text
        if step != steps[-1]:
            assert profile(client, therapist)["presence"] == "busy"
    shown = profile(client, therapist)
    assert shown["presence"] == "available" and shown["busyUntil"] is None
    assert therapist.id in listed_available(client)


def test_an_expired_request_makes_them_available_again(
    api: Api,
    app: FastAPI,
    client: TestClient,
    clock: FakeClock,
    customer: Account,
    therapist: Account,
) -> None:
    api.book(customer, therapist)
    clock.advance(minutes=6)
    assert run_job(app, "expire-requests") == 1
    assert profile(client, therapist)["presence"] == "available"


def test_on_the_way_moves_busy_until_to_the_arrival_plus_the_treatment(
    api: Api, client: TestClient, clock: FakeClock, customer: Account, therapist: Account
) -> None:
    booking = api.book(customer, therapist)["booking"]
    assert api.act(therapist, booking["id"], "accept").status_code == 200
    clock.advance(minutes=3)
    assert api.act(therapist, booking["id"], "on-the-way", {"etaMinutes": 40}).status_code == 200
    until = parse_time(profile(client, therapist)["busyUntil"])
    assert until == clock.at + timedelta(minutes=40 + 90)


def test_a_provider_who_went_offline_meanwhile_stays_offline(
    api: Api, client: TestClient, customer: Account, therapist: Account
) -> None:
    booking = api.book(customer, therapist)["booking"]
    assert api.act(therapist, booking["id"], "accept").status_code == 200
    set_presence(client, therapist, "offline")
    assert api.act(therapist, booking["id"], "complete").status_code == 200
    assert profile(client, therapist)["presence"] == "offline"


def test_scheduled_requests_leave_presence_alone(
    api: Api, client: TestClient, customer: Account, therapist: Account
) -> None:
    booking = api.book(customer, therapist, mode="scheduled", startAt=api.slot(therapist))
    assert profile(client, therapist)["presence"] == "available"
    assert api.act(therapist, booking["booking"]["id"], "decline").status_code == 200
    assert profile(client, therapist)["presence"] == "available"


def test_a_now_request_needs_the_provider_free_of_held_bookings(
    api: Api, client: TestClient, clock: FakeClock, customer: Account, therapist: Account
) -> None:
    """Going available outside one's hours is the provider's choice; holding a booking that
    the `now` treatment would run into is not."""
    api.schedule(
        therapist,
        weekly={d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        minNoticeMinutes=0,
    )
    soon = clock.at + timedelta(minutes=60)
    hotel = api.register("hotel")
    api.book(hotel, therapist, mode="scheduled", startAt=soon.isoformat())
    r = client.post("/api/v1/bookings", headers=customer.headers, json=api.book_body(therapist))
    body = assert_problem(r, 409, "slot_unavailable")
    assert body["freeStartTimes"]


@pytest.mark.backend_only("sqlite")
def test_accepting_declines_the_providers_other_requests_for_that_time(
    api: Api,
    app: FastAPI,
    client: TestClient,
    customer: Account,
    therapist: Account,
) -> None:
    """Book Now never lets two held requests overlap; this is the safety net for any that do
    (rows written before the rules, or by hand). PostgreSQL refuses to hold such rows at all,
    so the net is exercised where a second row can be written: SQLite."""
    first = api.book(customer, therapist, mode="scheduled", startAt=api.slot(therapist))
    other = api.book(
        api.register("villa"), therapist, mode="scheduled", startAt=api.slot(therapist, days=3)
    )
    with app.state.db.engine.begin() as conn:  # make the second request overlap the first
        conn.execute(
            text(
                "UPDATE bookings SET start_at = b.start_at, end_at = b.end_at, "
                "blocked_from = b.blocked_from, blocked_until = b.blocked_until "
                "FROM (SELECT * FROM bookings WHERE id = :first) AS b WHERE bookings.id = :other"
            ),
            {"first": first["booking"]["id"], "other": other["booking"]["id"]},
        )
    assert api.act(therapist, first["booking"]["id"], "accept").status_code == 200
    declined = client.get(
        f"/api/v1/bookings/{other['booking']['id']}", headers=therapist.headers
    ).json()
    assert declined["status"] == "declined" and declined["endedBy"] == "system"
    r = client.get(
        f"/api/v1/conversations/{declined['conversationId']}/messages", headers=therapist.headers
    )
    notes = [
        m["content"]
        for m in r.json()["items"]
        if m["bookingId"] == declined["id"] and m["isSystemMessage"]
    ]
    assert notes == [
        "Booking declined automatically: the provider accepted another booking at this time."
    ]
