"""Book Now and the booking lifecycle, through the public HTTP API, on a real database."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import Account, Api
from tests.problems import assert_problem, error_fields

BOOKING_FIELDS = {
    "id",
    "status",
    "mode",
    "customerId",
    "customerName",
    "providerId",
    "providerName",
    "serviceId",
    "startAt",
    "endAt",
    "location",
    "note",
    "guestName",
    "price",
    "etaAt",
    "conversationId",
    "createdAt",
    "updatedAt",
}
# Everything Book Now writes; after a failed Book Now none of it may be left behind.
BOOK_NOW_TABLES = (
    "bookings",
    "messages",
    "admin_messages",
    "conversations",
    "conversation_participants",
    "idempotency_keys",
    "user_events",
)


def when(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def count(app: FastAPI, table: str) -> int:
    with app.state.db.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def counts(app: FastAPI) -> dict[str, int]:
    return {table: count(app, table) for table in BOOK_NOW_TABLES}


def messages(client: TestClient, who: Account, conversation_id: str) -> list[dict[str, Any]]:
    r = client.get(f"/api/v1/conversations/{conversation_id}/messages", headers=who.headers)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def book(client: TestClient, who: Account, body: dict[str, Any], **headers: str) -> Any:
    return client.post("/api/v1/bookings", headers={**who.headers, **headers}, json=body)


@pytest.fixture
def customer(api: Api) -> Account:
    return api.register("customer", "Emma")


@pytest.fixture
def therapist(api: Api) -> Account:
    return api.provider("therapist")


# ---- Book Now -----------------------------------------------------------------------------


def test_book_now_answers_the_booking_its_conversation_and_message(
    api: Api, customer: Account, therapist: Account
) -> None:
    answer = api.book(customer, therapist, note="Strong pressure, please")
    booking, conversation, message = answer["booking"], answer["conversation"], answer["message"]

    assert booking.keys() >= BOOKING_FIELDS
    assert booking["status"] == "pending"
    assert booking["mode"] == "now"
    assert booking["customerId"] == customer.id and booking["customerName"] == "Emma"
    assert booking["providerId"] == therapist.id
    assert booking["providerName"] == therapist.name
    assert booking["serviceId"] == therapist.service_ids[0]
    assert booking["price"] == {"amount": 200000, "currency": "IDR"}
    assert booking["location"] == {"kind": "villa", "room": "Villa 3", "address": None}
    assert booking["guestName"] == "Anna" and booking["note"] == "Strong pressure, please"
    assert booking["etaAt"] is None
    assert booking["startAt"].endswith("Z") and booking["createdAt"].endswith("Z")
    assert parse(booking["endAt"]) - parse(booking["startAt"]) == timedelta(minutes=90)
    assert abs(parse(booking["startAt"]) - datetime.now(UTC)) < timedelta(minutes=1)

    assert conversation["id"] == booking["conversationId"]
    assert {p["id"] for p in conversation["participants"]} == {customer.id, therapist.id}
    assert message["conversationId"] == conversation["id"]
    assert message["messageType"] == "booking" and message["bookingId"] == booking["id"]
    assert message["senderId"] == customer.id and message["recipientId"] == therapist.id
    assert "Strong pressure" in message["content"] and "Anna" in message["content"]


def test_booking_fields_beyond_the_contract_are_documented(
    api: Api, client: TestClient, customer: Account, therapist: Account
) -> None:
    booking = api.book(customer, therapist)["booking"]
    schema = client.get("/api/v1/openapi.json").json()["components"]["schemas"]["BookingOut"]
    assert set(booking) <= set(schema["properties"])


def test_the_booking_message_is_in_the_conversation_for_both_parties(
    api: Api, client: TestClient, customer: Account, therapist: Account
) -> None:
    answer = api.book(customer, therapist)
    conversation_id = answer["conversation"]["id"]
    for who in (customer, therapist):
        items = messages(client, who, conversation_id)
        assert [m["id"] for m in items] == [answer["message"]["id"]]
        assert items[0]["messageType"] == "booking"
        assert items[0]["bookingId"] == answer["booking"]["id"]


def test_book_now_notifies_the_admins(
    api: Api, client: TestClient, make_admin: Any, customer: Account, therapist: Account
) -> None:
    answer = api.book(customer, therapist)
    admin = make_admin()
    r = client.get("/api/v1/admin/messages", headers=admin.headers)
    assert r.status_code == 200, r.text
    [note] = r.json()["items"]
    assert note["bookingId"] == answer["booking"]["id"]
    assert note["conversationId"] == answer["conversation"]["id"]
    assert "Emma" in note["title"]


def test_a_second_booking_with_the_same_provider_reuses_the_conversation(
    api: Api, client: TestClient, customer: Account, therapist: Account
) -> None:
    first = api.book(customer, therapist)
    second = api.book(customer, therapist, mode="scheduled", startAt=api.slot(therapist))
    assert second["booking"]["id"] != first["booking"]["id"]
    assert second["conversation"]["id"] == first["conversation"]["id"]
    ids = [m["id"] for m in messages(client, therapist, first["conversation"]["id"])]
    assert ids == [first["message"]["id"], second["message"]["id"]]
    assert second["conversation"]["lastMessage"]["id"] == second["message"]["id"]


def test_bookings_with_different_providers_get_their_own_conversations(
    api: Api, customer: Account, therapist: Account
) -> None:
    place = api.provider("place")
    a = api.book(customer, therapist)
    b = api.book(customer, place, location={"kind": "place"})
    assert a["conversation"]["id"] != b["conversation"]["id"]


def test_a_scheduled_time_with_an_offset_is_answered_in_utc(
    api: Api, customer: Account, therapist: Account
) -> None:
    bali = timezone(timedelta(hours=8))
    start = parse(api.slot(therapist, days=3)).astimezone(bali)
    booking = api.book(customer, therapist, mode="scheduled", startAt=start.isoformat())["booking"]
    assert start.isoformat().endswith("+08:00")
    assert booking["startAt"] == start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:00.000Z")
    assert parse(booking["endAt"]) - start == timedelta(minutes=90)


def test_a_number_is_not_a_time(
    api: Api, client: TestClient, customer: Account, therapist: Account
) -> None:
    start = int((datetime.now(UTC) + timedelta(days=1)).timestamp())
    r = book(client, customer, api.book_body(therapist, mode="scheduled", startAt=start))
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == ["startAt"]


def test_mode_defaults_to_scheduled(
    api: Api, client: TestClient, customer: Account, therapist: Account
) -> None:
    body = api.book_body(therapist)
    del body["mode"]
    r = book(client, customer, body)
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == ["startAt"]
    body["startAt"] = api.slot(therapist)
    r = book(client, customer, body)
    assert r.status_code == 201, r.text
    assert r.json()["booking"]["mode"] == "scheduled"


# ---- all or nothing -----------------------------------------------------------------------


def _explode(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("injected failure after the booking insert")


@pytest.mark.parametrize(
    "target", ["pesan.chat.service.post_message", "pesan.admin.service.notify"]
)
def test_a_failure_after_the_insert_leaves_nothing_behind(
    api: Api,
    app: FastAPI,
    client: TestClient,
    make_admin: Any,
    monkeypatch: pytest.MonkeyPatch,
    customer: Account,
    therapist: Account,
    target: str,
) -> None:
    before = counts(app)
    monkeypatch.setattr(target, _explode)
    r = book(client, customer, api.book_body(therapist), **{"Idempotency-Key": "k-1"})
    body = assert_problem(r, 500, "internal_error")
    assert body["status"] == 500 and body["title"] and body["type"]
    assert "injected" not in r.text  # the client sees the request id, not our internals
    assert body["requestId"] in body["detail"]
    monkeypatch.undo()

    assert counts(app) == before
    assert client.get("/api/v1/bookings", headers=customer.headers).json()["items"] == []
    assert client.get("/api/v1/bookings", headers=therapist.headers).json()["items"] == []
    assert client.get("/api/v1/conversations", headers=customer.headers).json()["items"] == []
    admin = make_admin()
    assert client.get("/api/v1/admin/messages", headers=admin.headers).json()["items"] == []

    # The key was not spent on the failed attempt: the retry books.
    r = book(client, customer, api.book_body(therapist), **{"Idempotency-Key": "k-1"})
    assert r.status_code == 201, r.text


def test_a_failure_in_an_existing_conversation_leaves_it_as_it_was(
    api: Api,
    app: FastAPI,
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    customer: Account,
    therapist: Account,
) -> None:
    first = api.book(customer, therapist)
    conversation_id = first["conversation"]["id"]
    before = counts(app)
    monkeypatch.setattr("pesan.admin.service.notify", _explode)
    r = book(
        client, customer, api.book_body(therapist, mode="scheduled", startAt=api.slot(therapist))
    )
    assert_problem(r, 500, "internal_error")
    monkeypatch.undo()

    assert counts(app) == before
    r = client.get(f"/api/v1/conversations/{conversation_id}", headers=customer.headers)
    assert r.json()["lastMessage"]["id"] == first["message"]["id"]
    assert r.json()["updatedAt"] == first["conversation"]["updatedAt"]
    assert [m["id"] for m in messages(client, therapist, conversation_id)] == [
        first["message"]["id"]
    ]


# ---- Idempotency-Key ----------------------------------------------------------------------


def test_a_retry_with_the_same_key_answers_the_same_ids_and_makes_nothing(
    api: Api, app: FastAPI, client: TestClient, customer: Account, therapist: Account
) -> None:
    body = api.book_body(therapist)
    first = book(client, customer, body, **{"Idempotency-Key": "retry-1"})
    assert first.status_code == 201, first.text
    before = counts(app)
    again = book(client, customer, body, **{"Idempotency-Key": "retry-1"})
    assert again.status_code == 201, again.text
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    for part in ("booking", "conversation", "message"):
        assert again.json()[part]["id"] == first.json()[part]["id"]
    assert again.json()["booking"] == first.json()["booking"]
    assert counts(app) == before
    assert len(client.get("/api/v1/bookings", headers=customer.headers).json()["items"]) == 1


def test_the_same_key_with_another_body_is_refused(
    api: Api, app: FastAPI, client: TestClient, customer: Account, therapist: Account
) -> None:
    r = book(client, customer, api.book_body(therapist), **{"Idempotency-Key": "k"})
    assert r.status_code == 201, r.text
    before = counts(app)
    other = api.book_body(therapist, guestName="Somebody else")
    r = book(client, customer, other, **{"Idempotency-Key": "k"})
    assert_problem(r, 409, "idempotency_key_reused")
    assert counts(app) == before


def test_different_users_may_use_the_same_key(
    api: Api, client: TestClient, customer: Account, therapist: Account
) -> None:
    villa = api.register("villa")
    first, second = api.slots(therapist, 2)
    a = book(
        client,
        customer,
        api.book_body(therapist, mode="scheduled", startAt=first),
        **{"Idempotency-Key": "shared"},
    )
    b = book(
        client,
        villa,
        api.book_body(therapist, mode="scheduled", startAt=second),
        **{"Idempotency-Key": "shared"},
    )
    assert a.status_code == b.status_code == 201, (a.text, b.text)
    assert a.json()["booking"]["id"] != b.json()["booking"]["id"]
    assert b.json()["booking"]["customerId"] == villa.id


def test_an_overlong_key_is_refused(
    api: Api, app: FastAPI, client: TestClient, customer: Account, therapist: Account
) -> None:
    r = book(client, customer, api.book_body(therapist), **{"Idempotency-Key": "k" * 256})
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == ["Idempotency-Key"]
    assert count(app, "bookings") == 0


def test_a_key_is_not_spent_by_a_refused_request(
    api: Api, client: TestClient, customer: Account
) -> None:
    provider = api.provider("therapist", presence="offline")
    body = api.book_body(provider)
    r = book(client, customer, body, **{"Idempotency-Key": "when-free"})
    assert_problem(r, 409, "provider_unavailable")
    r = client.put(
        "/api/v1/providers/me/presence", headers=provider.headers, json={"presence": "available"}
    )
    assert r.status_code == 200, r.text
    r = book(client, customer, body, **{"Idempotency-Key": "when-free"})
    assert r.status_code == 201, r.text


def test_without_a_key_each_request_books(
    api: Api, client: TestClient, customer: Account, therapist: Account
) -> None:
    a = api.book(customer, therapist)
    b = api.book(customer, therapist, mode="scheduled", startAt=api.slot(therapist))
    assert a["booking"]["id"] != b["booking"]["id"]


def test_concurrent_requests_with_one_key_make_one_booking(
    api: Api, app: FastAPI, client: TestClient, customer: Account, therapist: Account
) -> None:
    body = api.book_body(therapist)

    def attempt(_: int) -> Any:
        return book(client, customer, body, **{"Idempotency-Key": "race"})

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(attempt, range(6)))
    assert [r.status_code for r in answers] == [201] * 6, [r.text for r in answers]
    assert len({r.json()["booking"]["id"] for r in answers}) == 1
    assert len({r.json()["message"]["id"] for r in answers}) == 1
    assert count(app, "bookings") == 1
    assert count(app, "messages") == 1
    assert count(app, "admin_messages") == 1
    assert count(app, "conversations") == 1


def test_concurrent_bookings_with_one_provider_share_one_conversation(
    api: Api, app: FastAPI, client: TestClient, customer: Account, therapist: Account
) -> None:
    times = api.slots(therapist, 4)

    def attempt(i: int) -> Any:
        body = api.book_body(therapist, note=f"booking {i}", mode="scheduled", startAt=times[i])
        return book(client, customer, body)

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(attempt, range(4)))
    assert [r.status_code for r in answers] == [201] * 4, [r.text for r in answers]
    assert len({r.json()["conversation"]["id"] for r in answers}) == 1
    assert count(app, "bookings") == 4 and count(app, "conversations") == 1


# ---- Book Now rules -----------------------------------------------------------------------


@pytest.mark.parametrize("presence", ["busy", "offline"])
def test_now_needs_an_available_provider(
    api: Api, app: FastAPI, client: TestClient, customer: Account, presence: str
) -> None:
    provider = api.provider("therapist", presence=presence)
    r = book(client, customer, api.book_body(provider))
    assert_problem(r, 409, "provider_unavailable")
    assert count(app, "bookings") == 0


@pytest.mark.parametrize("presence", ["available", "busy", "offline"])
def test_scheduled_works_whatever_the_presence(api: Api, customer: Account, presence: str) -> None:
    provider = api.provider("therapist", presence=presence)
    booking = api.book(customer, provider, mode="scheduled", startAt=api.slot(provider))["booking"]
    assert booking["status"] == "pending" and booking["mode"] == "scheduled"


@pytest.mark.parametrize(
    "start_at", [None, "past", "no-offset", "not a time"], ids=["missing", "past", "naive", "junk"]
)
def test_scheduled_needs_a_future_start_with_an_offset(
    api: Api, client: TestClient, customer: Account, therapist: Account, start_at: str | None
) -> None:
    value = {
        "past": when(minutes=-5),
        "no-offset": (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S"),
    }.get(start_at or "", start_at)
    r = book(client, customer, api.book_body(therapist, mode="scheduled", startAt=value))
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == ["startAt"]


def test_now_with_a_start_hours_away_is_refused(
    api: Api, client: TestClient, customer: Account, therapist: Account
) -> None:
    r = book(client, customer, api.book_body(therapist, startAt=when(hours=5)))
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == ["startAt"]


@pytest.mark.parametrize(
    ("location", "field"),
    [
        ({"kind": "hotel"}, "location.room"),
        ({"kind": "villa", "room": "   "}, "location.room"),
        ({"kind": "home", "room": "2"}, "location.address"),
        ({"kind": "spa"}, "location.kind"),
        ({}, "location.kind"),
    ],
)
def test_location_rules(
    api: Api,
    client: TestClient,
    customer: Account,
    therapist: Account,
    location: dict[str, str],
    field: str,
) -> None:
    r = book(client, customer, api.book_body(therapist, location=location))
    body = assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == [field]
    assert field in body["detail"]


@pytest.mark.parametrize(
    "location",
    [
        {"kind": "hotel", "room": "204"},
        {"kind": "home", "address": "Jl. Hanoman 5, Ubud"},
        {"kind": "place"},
    ],
)
def test_complete_locations_book(
    api: Api, customer: Account, therapist: Account, location: dict[str, str]
) -> None:
    booking = api.book(customer, therapist, location=location)["booking"]
    assert {k: v for k, v in booking["location"].items() if v is not None} == location


def test_unknown_provider_is_not_found(
    api: Api, client: TestClient, customer: Account, therapist: Account
) -> None:
    r = book(client, customer, api.book_body(therapist, providerId="01ZZZZZZZZZZZZZZZZZZZZZZZZ"))
    assert_problem(r, 404, "not_found")


def test_an_account_without_a_provider_profile_cannot_be_booked(
    api: Api, client: TestClient, customer: Account
) -> None:
    for account in (api.register("customer"), api.register("therapist")):
        body = {"providerId": account.id, "serviceId": "x", "location": {"kind": "place"}}
        assert_problem(book(client, customer, body), 404, "not_found")


def test_a_service_of_another_provider_is_refused(
    api: Api, client: TestClient, customer: Account, therapist: Account
) -> None:
    other = api.provider("place")
    r = book(client, customer, api.book_body(therapist, serviceId=other.service_ids[0]))
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == ["serviceId"]


@pytest.mark.parametrize("role", ["hotel", "villa", "agent"])
def test_hotels_villas_and_agents_book_for_a_guest(api: Api, therapist: Account, role: str) -> None:
    booker = api.register(role)
    booking = api.book(booker, therapist, guestName="Mr Tanaka")["booking"]
    assert booking["customerId"] == booker.id and booking["guestName"] == "Mr Tanaka"


@pytest.mark.parametrize("role", ["therapist", "place"])
def test_providers_cannot_book(
    api: Api, app: FastAPI, client: TestClient, therapist: Account, role: str
) -> None:
    provider = api.provider(role)
    r = book(client, provider, api.book_body(therapist))
    assert_problem(r, 403, "role_not_allowed")
    assert count(app, "bookings") == 0


def test_admins_cannot_book(
    api: Api, client: TestClient, make_admin: Any, therapist: Account
) -> None:
    r = book(client, make_admin(), api.book_body(therapist))
    assert_problem(r, 403, "role_not_allowed")


def test_booking_needs_sign_in(api: Api, client: TestClient, therapist: Account) -> None:
    r = client.post("/api/v1/bookings", json=api.book_body(therapist))
    assert_problem(r, 401, "not_authenticated")


def test_the_provider_never_sees_how_to_reach_the_booker(
    api: Api, client: TestClient, customer: Account, therapist: Account
) -> None:
    answer = api.book(customer, therapist)
    seen = [
        client.get(f"/api/v1/bookings/{answer['booking']['id']}", headers=therapist.headers),
        client.get("/api/v1/bookings", headers=therapist.headers),
        client.get(
            f"/api/v1/conversations/{answer['conversation']['id']}/messages",
            headers=therapist.headers,
        ),
    ]
    for r in seen:
        assert r.status_code == 200, r.text
        assert customer.email.lower() not in r.text.lower()
        assert "Emma" in r.text


# ---- lifecycle ----------------------------------------------------------------------------


def _booked(api: Api, customer: Account, provider: Account, **overrides: Any) -> dict[str, Any]:
    return api.book(customer, provider, **overrides)["booking"]


def _move(api: Api, who: Account, booking: dict[str, Any], *path: str) -> dict[str, Any]:
    bodies: dict[str, Any] = {"on-the-way": {"etaMinutes": 20}}
    result = booking
    for action in path:
        r = api.act(who, booking["id"], action, bodies.get(action))
        assert r.status_code == 200, r.text
        result = r.json()
    return result


def _system_messages(client: TestClient, who: Account, booking: dict[str, Any]) -> list[Any]:
    items = messages(client, who, booking["conversationId"])
    return [m for m in items if m["messageType"] == "system"]


LIFECYCLE = [
    # (steps before, the action, its body, who acts, the status after)
    ((), "accept", None, "provider", "accepted"),
    ((), "decline", {"reason": "Fully booked today"}, "provider", "declined"),
    (("accept",), "on-the-way", {"etaMinutes": 25}, "provider", "on_the_way"),
    (("accept", "on-the-way"), "arrived", None, "provider", "arrived"),
    ((), "cancel", {"reason": "Plans changed"}, "customer", "cancelled"),
    (("accept",), "cancel", {"reason": "Sick"}, "provider", "cancelled"),
    (("accept", "on-the-way"), "cancel", None, "customer", "cancelled"),
    (("accept",), "complete", None, "provider", "completed"),
    (("accept", "on-the-way"), "complete", None, "provider", "completed"),
    (("accept", "on-the-way", "arrived"), "complete", None, "provider", "completed"),
]


@pytest.mark.parametrize(
    ("before", "action", "body", "actor", "after"),
    LIFECYCLE,
    ids=[f"{'>'.join((*c[0], c[1]))}-by-{c[3]}" for c in LIFECYCLE],
)
def test_each_transition_answers_the_booking_and_posts_one_system_message(
    api: Api,
    client: TestClient,
    customer: Account,
    therapist: Account,
    before: tuple[str, ...],
    action: str,
    body: Any,
    actor: str,
    after: str,
) -> None:
    booking = _move(api, therapist, _booked(api, customer, therapist), *before)
    earlier = messages(client, customer, booking["conversationId"])
    who = therapist if actor == "provider" else customer

    r = api.act(who, booking["id"], action, body)
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["id"] == booking["id"] and changed["status"] == after
    assert parse(changed["updatedAt"]) >= parse(booking["updatedAt"])
    if body and body.get("reason"):
        assert changed["statusReason"] == body["reason"]

    for party in (customer, therapist):
        got = client.get(f"/api/v1/bookings/{booking['id']}", headers=party.headers).json()
        assert got["status"] == after
        items = messages(client, party, booking["conversationId"])
        assert [m["id"] for m in items[: len(earlier)]] == [m["id"] for m in earlier]
        [new] = items[len(earlier) :]
        assert new["isSystemMessage"] is True
        assert new["senderType"] == "system" and new["messageType"] == "system"
        assert new["bookingId"] == booking["id"]
        assert new["conversationId"] == booking["conversationId"]
        if body and body.get("reason"):
            assert body["reason"] in new["content"]


def test_on_the_way_sets_eta(
    api: Api, client: TestClient, customer: Account, therapist: Account
) -> None:
    booking = _move(api, therapist, _booked(api, customer, therapist), "accept")
    r = api.act(therapist, booking["id"], "on-the-way", {"etaMinutes": 30})
    assert r.status_code == 200, r.text
    moved = r.json()
    assert moved["status"] == "on_the_way" and moved["etaAt"].endswith("Z")
    assert parse(moved["etaAt"]) - parse(moved["updatedAt"]) == timedelta(minutes=30)
    [note] = _system_messages(client, customer, booking)[-1:]
    assert "30 minutes" in note["content"]


@pytest.mark.parametrize("eta", [0, 241, -1, "soon", None])
def test_eta_must_be_1_to_240_minutes(
    api: Api, client: TestClient, customer: Account, therapist: Account, eta: Any
) -> None:
    booking = _move(api, therapist, _booked(api, customer, therapist), "accept")
    body = {} if eta is None else {"etaMinutes": eta}
    r = api.act(therapist, booking["id"], "on-the-way", body)
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == ["etaMinutes"]
    assert (
        client.get(f"/api/v1/bookings/{booking['id']}", headers=customer.headers).json()["status"]
        == "accepted"
    )


@pytest.mark.parametrize("eta", [1, 240])
def test_eta_bounds_are_allowed(api: Api, customer: Account, therapist: Account, eta: int) -> None:
    booking = _move(api, therapist, _booked(api, customer, therapist), "accept")
    r = api.act(therapist, booking["id"], "on-the-way", {"etaMinutes": eta})
    assert r.status_code == 200, r.text


def test_nobody_is_on_the_way_to_a_place(api: Api, client: TestClient, customer: Account) -> None:
    place = api.provider("place")
    booking = _move(api, place, _booked(api, customer, place, location={"kind": "place"}), "accept")
    r = api.act(place, booking["id"], "on-the-way", {"etaMinutes": 10})
    assert_problem(r, 409, "invalid_transition")
    got = client.get(f"/api/v1/bookings/{booking['id']}", headers=customer.headers).json()
    assert got["status"] == "accepted" and got["etaAt"] is None
    [note] = _system_messages(client, customer, booking)
    assert note["content"].startswith("Booking accepted.")
    assert _move(api, place, booking, "complete")["status"] == "completed"


@pytest.mark.parametrize("action", ["accept", "decline", "on-the-way", "arrived", "complete"])
def test_the_booker_cannot_act_for_the_provider(
    api: Api, client: TestClient, customer: Account, therapist: Account, action: str
) -> None:
    booking = _booked(api, customer, therapist)
    body = {"etaMinutes": 5} if action == "on-the-way" else None
    r = api.act(customer, booking["id"], action, body)
    assert_problem(r, 403, "wrong_actor")
    got = client.get(f"/api/v1/bookings/{booking['id']}", headers=customer.headers).json()
    assert got["status"] == "pending" and got["updatedAt"] == booking["updatedAt"]
    assert _system_messages(client, customer, booking) == []


def test_strangers_cannot_see_or_move_a_booking(
    api: Api, client: TestClient, customer: Account, therapist: Account
) -> None:
    booking = _booked(api, customer, therapist)
    for stranger in (api.register("customer"), api.provider("therapist")):
        r = client.get(f"/api/v1/bookings/{booking['id']}", headers=stranger.headers)
        assert_problem(r, 404, "not_found")
        assert_problem(api.act(stranger, booking["id"], "cancel"), 404, "not_found")
    assert (
        client.get(f"/api/v1/bookings/{booking['id']}", headers=customer.headers).json()["status"]
        == "pending"
    )


def test_an_admin_sees_a_booking_but_does_not_move_it(
    api: Api, client: TestClient, make_admin: Any, customer: Account, therapist: Account
) -> None:
    booking = _booked(api, customer, therapist)
    admin = make_admin()
    r = client.get(f"/api/v1/bookings/{booking['id']}", headers=admin.headers)
    assert r.status_code == 200 and r.json()["id"] == booking["id"]
    listed = client.get("/api/v1/bookings", headers=admin.headers).json()["items"]
    assert [b["id"] for b in listed] == [booking["id"]]
    assert_problem(api.act(admin, booking["id"], "accept"), 403, "forbidden")


INVALID = [
    ((), "on-the-way"),
    ((), "arrived"),
    ((), "complete"),
    (("accept",), "accept"),
    (("accept",), "decline"),
    (("accept",), "arrived"),
    (("accept", "on-the-way", "arrived"), "cancel"),
    (("decline",), "accept"),
    (("decline",), "cancel"),
    (("cancel",), "accept"),
    (("accept", "complete"), "complete"),
    (("accept", "complete"), "cancel"),
]


@pytest.mark.parametrize(
    ("before", "action"), INVALID, ids=[f"{'>'.join(b) or 'pending'}-{a}" for b, a in INVALID]
)
def test_a_change_the_status_does_not_allow_changes_nothing(
    api: Api,
    client: TestClient,
    customer: Account,
    therapist: Account,
    before: tuple[str, ...],
    action: str,
) -> None:
    booking = _move(api, therapist, _booked(api, customer, therapist), *before)
    earlier = messages(client, customer, booking["conversationId"])
    body = {"etaMinutes": 15} if action == "on-the-way" else None
    r = api.act(therapist, booking["id"], action, body)
    assert_problem(r, 409, "invalid_transition")
    got = client.get(f"/api/v1/bookings/{booking['id']}", headers=customer.headers).json()
    assert got == booking
    assert messages(client, customer, booking["conversationId"]) == earlier


def test_acting_on_an_unknown_booking_is_not_found(api: Api, therapist: Account) -> None:
    r = api.act(therapist, "01ZZZZZZZZZZZZZZZZZZZZZZZZ", "accept")
    assert_problem(r, 404, "not_found")


def test_one_booking_each_in_its_own_conversation_thread(
    api: Api, client: TestClient, customer: Account, therapist: Account
) -> None:
    first, second = api.slots(therapist, 2)
    a = _booked(api, customer, therapist, mode="scheduled", startAt=first)
    b = _booked(api, customer, therapist, mode="scheduled", startAt=second)
    _move(api, therapist, a, "accept")
    _move(api, therapist, b, "decline")
    notes = _system_messages(client, therapist, a)
    assert [(m["bookingId"], m["content"].split(" ")[:2]) for m in notes] == [
        (a["id"], ["Booking", "accepted"]),
        (b["id"], ["Booking", "declined."]),
    ]


# ---- listing and reading ------------------------------------------------------------------


def test_the_list_holds_the_callers_bookings_as_booker_or_provider(
    api: Api, client: TestClient, customer: Account, therapist: Account
) -> None:
    place = api.provider("place")
    other = api.register("hotel")
    mine = _booked(api, customer, therapist)
    at_place = _booked(api, customer, place, location={"kind": "place"})
    theirs = _booked(api, other, therapist, mode="scheduled", startAt=api.slot(therapist))

    def ids(who: Account, query: str = "") -> list[str]:
        r = client.get(f"/api/v1/bookings{query}", headers=who.headers)
        assert r.status_code == 200, r.text
        assert r.json()["nextCursor"] is None
        return [b["id"] for b in r.json()["items"]]

    assert ids(customer) == [at_place["id"], mine["id"]]
    assert ids(therapist) == [theirs["id"], mine["id"]]
    assert ids(place) == [at_place["id"]]
    assert ids(other) == [theirs["id"]]
    assert ids(api.register("customer")) == []


def test_the_list_filters_by_status(
    api: Api, client: TestClient, customer: Account, therapist: Account
) -> None:
    times = api.slots(therapist, 3)
    pending, accepted, declined = (
        _booked(api, customer, therapist, mode="scheduled", startAt=t) for t in times
    )
    accepted = _move(api, therapist, accepted, "accept")
    declined = _move(api, therapist, declined, "decline")
    for status, expected in [
        ("pending", [pending]),
        ("accepted", [accepted]),
        ("declined", [declined]),
        ("completed", []),
    ]:
        for who in (customer, therapist):
            r = client.get(f"/api/v1/bookings?status={status}", headers=who.headers)
            assert [b["id"] for b in r.json()["items"]] == [b["id"] for b in expected]
    r = client.get("/api/v1/bookings?status=done", headers=customer.headers)
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == ["status"]


def test_the_list_pages_with_a_cursor(
    api: Api, client: TestClient, customer: Account, therapist: Account
) -> None:
    made = [
        _booked(api, customer, therapist, mode="scheduled", startAt=t)["id"]
        for t in api.slots(therapist, 5)
    ]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        r = client.get(f"/api/v1/bookings{query}", headers=customer.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 2
        seen += [b["id"] for b in page["items"]]
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(made))  # newest first, each once


def test_a_cursor_the_server_did_not_make_is_refused(client: TestClient, customer: Account) -> None:
    r = client.get("/api/v1/bookings?cursor=not-a-cursor", headers=customer.headers)
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == ["cursor"]


@pytest.mark.parametrize("limit", [0, 201])
def test_limit_is_1_to_200(client: TestClient, customer: Account, limit: int) -> None:
    r = client.get(f"/api/v1/bookings?limit={limit}", headers=customer.headers)
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == ["limit"]


def test_each_party_reads_the_booking(
    api: Api, client: TestClient, customer: Account, therapist: Account
) -> None:
    answer = api.book(customer, therapist)
    for who in (customer, therapist):
        r = client.get(f"/api/v1/bookings/{answer['booking']['id']}", headers=who.headers)
        assert r.status_code == 200, r.text
        assert r.json() == answer["booking"]


def test_a_booking_is_accepted_once_however_many_times_it_is_pressed(
    api: Api, client: TestClient
) -> None:
    """Six accepts at the same moment: one 200, the rest 409, one system message."""
    customer, therapist = api.register("customer"), api.provider("therapist")
    booking = api.book(customer, therapist)["booking"]
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(
            pool.map(lambda _: api.act(therapist, booking["id"], "accept").status_code, range(6))
        )
    assert sorted(statuses) == [200, 409, 409, 409, 409, 409]
    messages = client.get(
        f"/api/v1/conversations/{booking['conversationId']}/messages", headers=customer.headers
    ).json()["items"]
    [note] = [m["content"] for m in messages if m["isSystemMessage"]]
    assert note.startswith("Booking accepted.")
