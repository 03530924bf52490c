"""Reschedule in the chat: one party proposes a new time as a structured message, the other
accepts (the booking moves if that time is free) or declines."""

from datetime import datetime, timedelta
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


@pytest.fixture
def booked(api: Api, clock: FakeClock, customer: Account, therapist: Account) -> dict[str, Any]:
    answer = api.book(
        customer, therapist, mode="scheduled", startAt=api.slot(therapist, after=clock.at)
    )
    assert api.act(therapist, answer["booking"]["id"], "accept").status_code == 200
    return dict(answer["booking"])


def propose(client: TestClient, who: Account, booking: dict[str, Any], start: str) -> Any:
    return client.post(
        f"/api/v1/bookings/{booking['id']}/proposals", headers=who.headers, json={"startAt": start}
    )


def answer(
    client: TestClient, who: Account, booking: dict[str, Any], proposal: str, verb: str
) -> Any:
    return client.post(
        f"/api/v1/bookings/{booking['id']}/proposals/{proposal}/{verb}", headers=who.headers
    )


def chat(client: TestClient, who: Account, booking: dict[str, Any]) -> list[dict[str, Any]]:
    r = client.get(
        f"/api/v1/conversations/{booking['conversationId']}/messages", headers=who.headers
    )
    return list(r.json()["items"])


def test_a_proposal_accepted_moves_the_booking(
    api: Api,
    client: TestClient,
    clock: FakeClock,
    customer: Account,
    therapist: Account,
    booked: dict[str, Any],
) -> None:
    new_start = api.slot(therapist, days=3, after=clock.at)
    r = propose(client, customer, booked, new_start)
    assert r.status_code == 201, r.text
    proposal = r.json()
    assert proposal["status"] == "pending" and proposal["proposedBy"] == "booker"
    card = chat(client, therapist, booked)[-1]
    assert card["messageType"] == "reschedule" and card["senderId"] == customer.id
    assert card["data"] == {
        "proposalId": proposal["id"],
        "bookingId": booked["id"],
        "startAt": new_start,
        "endAt": proposal["endAt"],
    }
    assert "Proposed new time:" in card["content"] and "WITA" in card["content"]

    assert_problem(answer(client, customer, booked, proposal["id"], "accept"), 403, "wrong_actor")
    r = answer(client, therapist, booked, proposal["id"], "accept")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted"
    moved = client.get(f"/api/v1/bookings/{booked['id']}", headers=customer.headers).json()
    assert moved["startAt"] == new_start and moved["status"] == "accepted"
    assert parse_time(moved["endAt"]) - parse_time(moved["startAt"]) == (
        parse_time(booked["endAt"]) - parse_time(booked["startAt"])
    )
    assert chat(client, customer, booked)[-1]["content"].startswith("New time agreed: ")
    # the old time is free again, the new one is held
    old, new = parse_time(booked["startAt"]), parse_time(new_start)

    def offered_around(at: datetime) -> set[datetime]:
        return set(api.availability(therapist, at - timedelta(hours=1), at + timedelta(hours=1)))

    assert old in offered_around(old)
    assert new not in offered_around(new)


def test_a_declined_proposal_leaves_the_booking_where_it_was(
    api: Api,
    client: TestClient,
    clock: FakeClock,
    customer: Account,
    therapist: Account,
    booked: dict[str, Any],
) -> None:
    proposal = propose(
        client, therapist, booked, api.slot(therapist, days=2, after=clock.at)
    ).json()
    assert proposal["proposedBy"] == "provider"
    r = answer(client, customer, booked, proposal["id"], "decline")
    assert r.status_code == 200 and r.json()["status"] == "declined"
    same = client.get(f"/api/v1/bookings/{booked['id']}", headers=customer.headers).json()
    assert same["startAt"] == booked["startAt"]
    assert "declined" in chat(client, therapist, booked)[-1]["content"]
    assert_problem(
        answer(client, customer, booked, proposal["id"], "accept"), 409, "invalid_transition"
    )


def test_a_time_that_is_not_free_cannot_be_proposed(
    api: Api,
    client: TestClient,
    clock: FakeClock,
    customer: Account,
    therapist: Account,
    booked: dict[str, Any],
) -> None:
    other = api.book(
        api.register("hotel"),
        therapist,
        mode="scheduled",
        startAt=api.slot(therapist, days=4, after=clock.at),
    )["booking"]
    body = assert_problem(
        propose(client, customer, booked, other["startAt"]), 409, "slot_unavailable"
    )
    assert body["freeStartTimes"]
    assert (
        client.get(f"/api/v1/bookings/{booked['id']}/proposals", headers=customer.headers).json()[
            "items"
        ]
        == []
    )


def test_accepting_a_time_taken_meanwhile_is_refused_and_the_proposal_stays_open(
    api: Api,
    client: TestClient,
    clock: FakeClock,
    customer: Account,
    therapist: Account,
    booked: dict[str, Any],
) -> None:
    wanted = api.slot(therapist, days=5, after=clock.at)
    proposal = propose(client, customer, booked, wanted).json()
    taken = api.book(api.register("villa"), therapist, mode="scheduled", startAt=wanted)
    assert taken["booking"]["startAt"] == wanted
    assert_problem(
        answer(client, therapist, booked, proposal["id"], "accept"), 409, "slot_unavailable"
    )
    listed = client.get(f"/api/v1/bookings/{booked['id']}/proposals", headers=customer.headers)
    assert [p["status"] for p in listed.json()["items"]] == ["pending"]


def test_a_new_proposal_replaces_the_open_one_and_an_ending_withdraws_it(
    api: Api,
    client: TestClient,
    clock: FakeClock,
    customer: Account,
    therapist: Account,
    booked: dict[str, Any],
) -> None:
    first, second = api.slots(therapist, 2, days=2, after=clock.at)
    propose(client, customer, booked, first)
    propose(client, therapist, booked, second)
    assert api.act(customer, booked["id"], "cancel").status_code == 200
    listed = client.get(f"/api/v1/bookings/{booked['id']}/proposals", headers=customer.headers)
    assert [p["status"] for p in listed.json()["items"]] == ["withdrawn", "withdrawn"]


def test_a_now_booking_is_not_moved(
    api: Api, client: TestClient, customer: Account, therapist: Account
) -> None:
    booking = api.book(customer, therapist)["booking"]
    r = propose(client, customer, booking, api.slot(therapist))
    assert_problem(r, 409, "invalid_transition")
