"""Conversations: who may talk to whom, one conversation per pair, the list and one conversation."""

import base64
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from pesan.chat.models import Conversation
from tests.conftest import Account, Api
from tests.problems import assert_problem

BOOKERS = ["customer", "hotel", "villa", "agent"]
PROVIDERS = ["therapist", "place"]
EVERYONE = BOOKERS + PROVIDERS
UNKNOWN_ID = "01JAAAAAAAAAAAAAAAAAAAAAAA"


def open_conversation(client: TestClient, who: Account, participant_id: str) -> Any:
    return client.post(
        "/api/v1/conversations", headers=who.headers, json={"participantId": participant_id}
    )


def my_conversations(client: TestClient, who: Account, **params: Any) -> dict[str, Any]:
    r = client.get("/api/v1/conversations", headers=who.headers, params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_open_gives_one_conversation_per_pair_from_either_side(api: Api, client: TestClient):
    customer = api.register("customer", "Emma")
    therapist = api.register("therapist", "Wayan")

    first = open_conversation(client, customer, therapist.id)
    assert first.status_code == 200, first.text
    conversation = first.json()
    assert {p["id"] for p in conversation["participants"]} == {customer.id, therapist.id}
    assert {(p["name"], p["role"]) for p in conversation["participants"]} == {
        ("Emma", "customer"),
        ("Wayan", "therapist"),
    }
    assert conversation["lastMessage"] is None
    assert conversation["unreadCount"] == 0
    assert conversation["createdAt"].endswith("Z") and conversation["updatedAt"].endswith("Z")

    again = open_conversation(client, customer, therapist.id)
    other_side = open_conversation(client, therapist, customer.id)
    assert again.status_code == other_side.status_code == 200
    assert again.json()["id"] == other_side.json()["id"] == conversation["id"]
    for who in (customer, therapist):
        assert [c["id"] for c in my_conversations(client, who)["items"]] == [conversation["id"]]


def test_book_now_reuses_the_pair_conversation(api: Api, client: TestClient):
    customer = api.register("customer")
    therapist = api.provider("therapist")
    conversation_id = api.conversation(customer, therapist)
    booked = api.book(customer, therapist)
    assert booked["conversation"]["id"] == conversation_id
    assert booked["booking"]["conversationId"] == conversation_id
    assert api.conversation(therapist, customer) == conversation_id


@pytest.mark.parametrize("provider_role", PROVIDERS)
@pytest.mark.parametrize("booker_role", BOOKERS)
def test_a_booker_and_a_provider_may_talk(
    api: Api, client: TestClient, booker_role: str, provider_role: str
):
    booker = api.register(booker_role)
    provider = api.register(provider_role)
    from_booker = open_conversation(client, booker, provider.id)
    from_provider = open_conversation(client, provider, booker.id)
    assert from_booker.status_code == from_provider.status_code == 200
    assert from_booker.json()["id"] == from_provider.json()["id"]


@pytest.mark.parametrize("role", EVERYONE)
def test_anyone_may_talk_with_an_admin(api: Api, client: TestClient, make_admin: Any, role: str):
    admin = make_admin()
    user = api.register(role)
    from_admin = open_conversation(client, admin, user.id)
    from_user = open_conversation(client, user, admin.id)
    assert from_admin.status_code == from_user.status_code == 200
    assert from_admin.json()["id"] == from_user.json()["id"]
    roles = {p["id"]: p["role"] for p in from_admin.json()["participants"]}
    assert roles == {admin.id: "admin", user.id: role}


def test_two_admins_may_talk(client: TestClient, make_admin: Any):
    one, two = make_admin("One"), make_admin("Two")
    r = open_conversation(client, one, two.id)
    assert r.status_code == 200, r.text
    assert open_conversation(client, two, one.id).json()["id"] == r.json()["id"]


@pytest.mark.parametrize(
    ("role_a", "role_b"),
    [
        ("customer", "customer"),
        ("customer", "hotel"),
        ("villa", "agent"),
        ("hotel", "hotel"),
        ("therapist", "place"),
        ("therapist", "therapist"),
        ("place", "place"),
    ],
)
def test_other_pairs_are_refused_and_nothing_is_made(
    api: Api, client: TestClient, role_a: str, role_b: str
):
    a, b = api.register(role_a), api.register(role_b)
    assert_problem(open_conversation(client, a, b.id), 403, "conversation_not_allowed")
    assert_problem(open_conversation(client, b, a.id), 403, "conversation_not_allowed")
    assert my_conversations(client, a)["items"] == []
    assert my_conversations(client, b)["items"] == []


@pytest.mark.parametrize("role", [*EVERYONE, "admin"])
def test_no_conversation_with_oneself(api: Api, client: TestClient, make_admin: Any, role: str):
    me = make_admin() if role == "admin" else api.register(role)
    assert_problem(open_conversation(client, me, me.id), 403, "conversation_not_allowed")
    assert my_conversations(client, me)["items"] == []


@pytest.mark.parametrize("participant_id", [UNKNOWN_ID, "nobody-at-all"])
def test_unknown_participant_is_not_found(api: Api, client: TestClient, participant_id: str):
    customer = api.register("customer")
    assert_problem(open_conversation(client, customer, participant_id), 404, "not_found")
    assert my_conversations(client, customer)["items"] == []


@pytest.mark.parametrize("body", [{}, {"participantId": ""}, {"participantId": "x" * 65}])
def test_open_needs_a_participant(api: Api, client: TestClient, body: dict[str, Any]):
    customer = api.register("customer")
    r = client.post("/api/v1/conversations", headers=customer.headers, json=body)
    problem = assert_problem(r, 422, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == ["participantId"]


def test_list_is_most_recently_active_first_with_last_message_and_unread(
    api: Api, client: TestClient
):
    customer = api.register("customer")
    first, second, third = (api.register("therapist", f"T{i}") for i in range(3))
    ids = [api.conversation(customer, t) for t in (first, second, third)]
    assert [c["id"] for c in my_conversations(client, customer)["items"]] == ids[::-1]

    assert api.send(first, ids[0], "Halo").status_code == 201
    last = api.send(first, ids[0], "Jam berapa?").json()
    listed = my_conversations(client, customer)["items"]
    assert [c["id"] for c in listed] == [ids[0], ids[2], ids[1]]
    assert listed[0]["lastMessage"] == last
    assert listed[0]["unreadCount"] == 2
    assert [c["lastMessage"] for c in listed[1:]] == [None, None]
    assert [c["unreadCount"] for c in listed[1:]] == [0, 0]
    # The sender has nothing unread; it sees the same last message.
    (mine,) = my_conversations(client, first)["items"]
    assert mine["unreadCount"] == 0 and mine["lastMessage"] == last

    assert api.send(customer, ids[1], "Besok bisa?").status_code == 201
    assert [c["id"] for c in my_conversations(client, customer)["items"]] == [
        ids[1],
        ids[0],
        ids[2],
    ]


def test_list_shows_only_my_conversations(api: Api, client: TestClient, make_admin: Any):
    customer, other = api.register("customer"), api.register("customer")
    therapist = api.register("therapist")
    mine = api.conversation(customer, therapist)
    theirs = api.conversation(other, therapist)
    assert [c["id"] for c in my_conversations(client, customer)["items"]] == [mine]
    assert [c["id"] for c in my_conversations(client, other)["items"]] == [theirs]
    assert {c["id"] for c in my_conversations(client, therapist)["items"]} == {mine, theirs}
    # An admin's list is the admin's own conversations, not everyone's.
    assert my_conversations(client, make_admin())["items"] == []


def test_list_pages_with_next_cursor(api: Api, client: TestClient):
    customer = api.register("customer")
    ids = [api.conversation(customer, api.register("therapist")) for _ in range(5)]
    everything = my_conversations(client, customer)
    assert everything["nextCursor"] is None
    assert [c["id"] for c in everything["items"]] == ids[::-1]

    seen: list[str] = []
    sizes: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = my_conversations(client, customer, **params)
        sizes.append(len(page["items"]))
        seen += [c["id"] for c in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert sizes == [2, 2, 1]
    assert seen == ids[::-1]


def test_list_page_that_ends_exactly_has_no_next_cursor(api: Api, client: TestClient):
    customer = api.register("customer")
    for _ in range(2):
        api.conversation(customer, api.register("therapist"))
    page = my_conversations(client, customer, limit=2)
    assert len(page["items"]) == 2 and page["nextCursor"] is None


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 201}, {"cursor": "not a cursor"}, {"cursor": "bm90fGE="}],
)
def test_list_rejects_bad_paging(api: Api, client: TestClient, params: dict[str, Any]):
    customer = api.register("customer")
    api.conversation(customer, api.register("therapist"))
    r = client.get("/api/v1/conversations", headers=customer.headers, params=params)
    problem = assert_problem(r, 422, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == list(params)


def test_list_accepts_the_largest_page(api: Api, client: TestClient):
    customer = api.register("customer")
    conversation_id = api.conversation(customer, api.register("therapist"))
    page = my_conversations(client, customer, limit=200)
    assert [c["id"] for c in page["items"]] == [conversation_id]


def test_one_conversation_for_its_parties_and_admins(api: Api, client: TestClient, make_admin: Any):
    customer = api.register("customer")
    therapist = api.register("therapist")
    conversation_id = api.conversation(customer, therapist)
    api.send(therapist, conversation_id, "Siap")
    url = f"/api/v1/conversations/{conversation_id}"

    for who, unread in ((customer, 1), (therapist, 0), (make_admin(), 0)):
        r = client.get(url, headers=who.headers)
        assert r.status_code == 200, r.text
        assert r.json()["id"] == conversation_id
        assert r.json()["unreadCount"] == unread
        assert r.json()["lastMessage"]["content"] == "Siap"

    for stranger in (api.register("customer"), api.register("therapist")):
        assert_problem(client.get(url, headers=stranger.headers), 404, "not_found")
    assert_problem(
        client.get(f"/api/v1/conversations/{UNKNOWN_ID}", headers=customer.headers),
        404,
        "not_found",
    )


def test_conversations_never_show_emails(api: Api, client: TestClient, make_admin: Any):
    customer = api.register("customer")
    therapist = api.provider("therapist")
    admin = make_admin()
    booked = api.book(customer, therapist)
    conversation_id = booked["conversation"]["id"]
    api.send(therapist, conversation_id, "On my way soon")
    admin_conversation = api.conversation(admin, customer)

    answers = [
        str(booked["conversation"]),
        open_conversation(client, therapist, customer.id).text,
        open_conversation(client, customer, admin.id).text,
        client.get(f"/api/v1/conversations/{conversation_id}", headers=admin.headers).text,
        client.get(f"/api/v1/conversations/{admin_conversation}", headers=customer.headers).text,
    ]
    for who in (customer, therapist, admin):
        answers.append(client.get("/api/v1/conversations", headers=who.headers).text)
    for text in answers:
        for account in (customer, therapist, admin):
            assert account.email not in text
        assert "email" not in text.lower()


def test_concurrent_opens_make_one_conversation(api: Api, client: TestClient):
    customer = api.register("customer")
    therapist = api.register("therapist")
    pairs = [(customer, therapist.id), (therapist, customer.id)] * 3
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda p: open_conversation(client, *p), pairs))
    assert [r.status_code for r in answers] == [200] * 6, [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    assert len(my_conversations(client, customer)["items"]) == 1


def test_a_nul_character_in_ids_is_not_a_server_error(api: Api, client: TestClient):
    customer = api.register("customer")
    api.conversation(customer, api.register("therapist"))
    assert_problem(open_conversation(client, customer, "01J\x00"), 422, "validation_failed")
    assert_problem(open_conversation(client, customer, "01J"), 404, "not_found")
    assert_problem(
        client.get("/api/v1/conversations/01J%00", headers=customer.headers),
        422,
        "validation_failed",
    )
    cursor = base64.urlsafe_b64encode(b"2030-01-01T00:00:00.000Z|01J\x00").decode()
    r = client.get("/api/v1/conversations", headers=customer.headers, params={"cursor": cursor})
    assert_problem(r, 422, "validation_failed")


def test_paging_is_exact_when_conversations_were_active_at_the_same_instant(
    api: Api, client: TestClient, app: FastAPI
):
    customer = api.register("customer")
    ids = [api.conversation(customer, api.register("therapist")) for _ in range(5)]
    same_instant = datetime(2030, 1, 1, 12, 0, 0, 123000, tzinfo=UTC)
    with app.state.db.transaction() as session:
        session.execute(update(Conversation).values(updated_at=same_instant))

    for limit in (1, 2, 3):
        seen: list[str] = []
        params: dict[str, Any] = {"limit": limit}
        while True:
            page = my_conversations(client, customer, **params)
            seen += [c["id"] for c in page["items"]]
            if page["nextCursor"] is None:
                break
            params = {"limit": limit, "cursor": page["nextCursor"]}
        assert seen == sorted(ids, reverse=True), limit
