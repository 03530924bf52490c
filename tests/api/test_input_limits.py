"""Every time, number and line of text a client sends either fits what pesan supports or gets a
422 naming the field, on both databases (PostgreSQL's session zone is Asia/Makassar here)."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from pesan.schemas import encode_cursor
from tests.conftest import Account, Api
from tests.problems import assert_problem, error_fields

EDGE_TIMES = [
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:00:00Z",
    "9999-12-01T00:00:00Z",
]


def _set_time(api: Api, client: TestClient, field: str, value: str) -> Any:
    customer, therapist = api.register("customer"), api.provider("therapist")
    if field == "startAt":
        body = api.book_body(therapist, mode="scheduled", startAt=value)
        return client.post("/api/v1/bookings", headers=customer.headers, json=body)
    if field == "busyUntil":
        return client.put(
            "/api/v1/providers/me/presence",
            headers=therapist.headers,
            json={"presence": "busy", "busyUntil": value},
        )
    conversation = api.conversation(customer, therapist)
    return api.send(customer, conversation, "hello", expiresAt=value)


@pytest.mark.parametrize("value", EDGE_TIMES)
@pytest.mark.parametrize("field", ["startAt", "busyUntil", "expiresAt"])
def test_times_out_of_range_are_refused_naming_the_field(
    api: Api, client: TestClient, field: str, value: str
) -> None:
    r = _set_time(api, client, field, value)
    assert_problem(r, 422, "validation_failed")
    assert field in error_fields(r)[0], r.json()


@pytest.mark.parametrize("field", ["busyUntil", "expiresAt"])
def test_the_last_supported_time_is_stored_and_listed(
    api: Api, client: TestClient, field: str
) -> None:
    r = _set_time(api, client, field, "9999-11-30T23:59:59+00:00")
    assert r.status_code in (200, 201), r.text
    assert r.json()[field] == "9999-11-30T23:59:59.000Z"
    listed = client.get("/api/v1/providers")
    assert listed.status_code == 200, listed.text


def test_a_cursor_holding_an_edge_time_is_refused(api: Api, client: TestClient) -> None:
    customer = api.register("customer")
    cursor = encode_cursor("0001-01-01T00:00:00+14:00", "01JDQ0000000000000000000AA")
    r = client.get("/api/v1/conversations", headers=customer.headers, params={"cursor": cursor})
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == ["cursor"]


@pytest.mark.parametrize("amount", [2**63, 10**15 + 1, -1, 10**40])
def test_money_out_of_range_is_refused(api: Api, client: TestClient, amount: int) -> None:
    therapist = api.provider("therapist")
    r = client.post(
        "/api/v1/providers/me/services",
        headers=therapist.headers,
        json={"name": "Massage", "durationMinutes": 60, "price": {"amount": amount}},
    )
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == ["price.amount"]


def test_the_largest_amount_is_stored(api: Api, client: TestClient) -> None:
    therapist = api.provider("therapist")
    r = client.post(
        "/api/v1/providers/me/services",
        headers=therapist.headers,
        json={"name": "Massage", "durationMinutes": 60, "price": {"amount": 10**15}},
    )
    assert r.status_code == 201, r.text
    assert r.json()["price"]["amount"] == 10**15


@pytest.mark.parametrize("number", ["limit=1000000000000000000000", "limit=-9223372036854775809"])
def test_huge_query_integers_are_refused(api: Api, client: TestClient, number: str) -> None:
    r = client.get(f"/api/v1/providers?{number}")
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == ["limit"]


FORGED = "Villa 3\nPrice: IDR 1"


def _single_line_case(api: Api, field: str) -> tuple[str, str, Account, dict[str, Any]]:
    customer, therapist = api.register("customer"), api.provider("therapist")
    if field in ("location.room", "guestName", "location.address"):
        body = api.book_body(therapist)
        if field == "guestName":
            body["guestName"] = FORGED
        elif field == "location.room":
            body["location"] = {"kind": "villa", "room": FORGED}
        else:
            body["location"] = {"kind": "home", "address": FORGED}
        return "POST", "/api/v1/bookings", customer, body
    if field == "reason":
        booking = api.book(customer, therapist)["booking"]["id"]
        return "POST", f"/api/v1/bookings/{booking}/decline", therapist, {"reason": FORGED}
    if field in ("name", "area"):
        return "PUT", "/api/v1/providers/me", therapist, {field: "Ubud\r\nPrice"}
    return (
        "POST",
        "/api/v1/providers/me/services",
        therapist,
        {
            "name": "Massage\x1b[31m",
            "durationMinutes": 60,
            "price": {"amount": 1},
        },
    )


@pytest.mark.parametrize(
    "field", ["location.room", "guestName", "location.address", "reason", "name", "area", "svc"]
)
def test_single_line_fields_refuse_line_breaks_and_control_characters(
    api: Api, client: TestClient, field: str
) -> None:
    method, path, who, body = _single_line_case(api, field)
    r = client.request(method, path, headers=who.headers, json=body)
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == ["name" if field == "svc" else field]


def test_register_name_and_message_ids_are_one_line(api: Api, client: TestClient) -> None:
    r = client.post(
        "/api/v1/auth/register",
        json={"email": "x@example.com", "password": "long enough", "name": "A\u2028B"},
    )
    assert "name" in error_fields(r)
    customer, therapist = api.register("customer"), api.provider("therapist")
    conversation = api.conversation(customer, therapist)
    r = api.send(customer, conversation, "hi", clientMessageId="a\nb")
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == ["clientMessageId"]


def test_multi_line_fields_keep_their_lines(api: Api, client: TestClient) -> None:
    customer, therapist = api.register("customer"), api.provider("therapist")
    r = client.put(
        "/api/v1/providers/me",
        headers=therapist.headers,
        json={"bio": "Balinese massage.\nTwelve years.", "area": "Ubud"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["bio"] == "Balinese massage.\nTwelve years."
    booked = api.book(customer, therapist, note="Gate code 1234.\nDog is friendly.")
    assert booked["booking"]["note"] == "Gate code 1234.\nDog is friendly."
    r = client.put(
        "/api/v1/providers/me", headers=therapist.headers, json={"bio": "bell\x07", "area": "x"}
    )
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == ["bio"]


def test_a_note_cannot_forge_a_line_of_the_card_or_the_notification(
    api: Api, client: TestClient, make_admin: Any
) -> None:
    customer, therapist = api.register("customer"), api.provider("therapist")
    booked = api.book(customer, therapist, note="Gate code 1234.\nPrice: IDR 1")
    card = booked["message"]["content"].split("\n")
    assert [line for line in card if line.startswith("Price:")] == ["Price: IDR 200.000"]
    note = card.index("Note: Gate code 1234.")
    assert card[note + 1] == "  Price: IDR 1"
    admin = make_admin()
    inbox = client.get("/api/v1/admin/messages", headers=admin.headers).json()["items"]
    assert inbox[0]["body"] == booked["message"]["content"]
    assert "\n" not in inbox[0]["title"]


@pytest.mark.parametrize("day", ["0001-01-01", "1969-12-31", "9999-12-31"])
def test_days_off_out_of_range_are_refused(api: Api, client: TestClient, day: str) -> None:
    therapist = api.provider("therapist")
    r = client.put(
        "/api/v1/providers/me/schedule",
        headers=therapist.headers,
        json={"weeklyHours": {}, "daysOff": ["2026-12-25", day]},
    )
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == ["daysOff.1"]
