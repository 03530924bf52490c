"""Messages: sending, deduplication, legacy names, history paging and read receipts."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from tests.conftest import Account, Api
from tests.problems import assert_problem

MESSAGE_FIELDS = {
    "id",
    "conversationId",
    "senderId",
    "senderName",
    "senderType",
    "recipientId",
    "recipientName",
    "recipientType",
    "content",
    "messageType",
    "originalLanguage",
    "isSystemMessage",
    "roomId",
    "bookingId",
    "read",
    "readAt",
    "expiresAt",
    "sessionId",
    "clientMessageId",
    "createdAt",
    "data",  # beyond the contract: a server-posted card's structured content
}
UNKNOWN_ID = "01JAAAAAAAAAAAAAAAAAAAAAAA"


@dataclass
class Chat:
    customer: Account
    therapist: Account
    id: str


@pytest.fixture
def chat(api: Api) -> Chat:
    customer = api.register("customer", "Emma")
    therapist = api.register("therapist", "Wayan")
    return Chat(customer, therapist, api.conversation(customer, therapist))


def history(client: TestClient, who: Account, conversation_id: str, **params: Any) -> Any:
    return client.get(
        f"/api/v1/conversations/{conversation_id}/messages", headers=who.headers, params=params
    )


def all_messages(client: TestClient, who: Account, conversation_id: str) -> list[dict[str, Any]]:
    r = history(client, who, conversation_id, limit=200)
    assert r.status_code == 200, r.text
    assert r.json()["nextCursor"] is None
    return list(r.json()["items"])


def post(client: TestClient, who: Account, conversation_id: str, body: Any) -> Any:
    return client.post(
        f"/api/v1/conversations/{conversation_id}/messages", headers=who.headers, json=body
    )


def mark_read(client: TestClient, who: Account, conversation_id: str, up_to: str) -> Any:
    return client.post(
        f"/api/v1/conversations/{conversation_id}/read",
        headers=who.headers,
        json={"upToMessageId": up_to},
    )


def conversation(client: TestClient, who: Account, conversation_id: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/conversations/{conversation_id}", headers=who.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def listed(client: TestClient, who: Account, conversation_id: str) -> dict[str, Any]:
    r = client.get("/api/v1/conversations", headers=who.headers)
    assert r.status_code == 200, r.text
    (found,) = [c for c in r.json()["items"] if c["id"] == conversation_id]
    return dict(found)


def assert_invalid(r: Any, field: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "validation_failed"
    assert field in [e["field"] for e in body["errors"]], body


def send_many(api: Api, chat: Chat, count: int) -> list[dict[str, Any]]:
    sent = []
    for i in range(count):
        who = chat.customer if i % 2 == 0 else chat.therapist
        r = api.send(who, chat.id, f"message {i}")
        assert r.status_code == 201, r.text
        sent.append(r.json())
    return sent


# ---- sending ---------------------------------------------------------------------------------


def test_send_answers_every_message_field(api: Api, client: TestClient, chat: Chat):
    r = api.send(chat.customer, chat.id, "Halo, bisa pijat jam 3?")
    assert r.status_code == 201, r.text
    message = r.json()
    assert set(message) == MESSAGE_FIELDS
    assert len(message["id"]) == 26
    expected = {
        "conversationId": chat.id,
        "senderId": chat.customer.id,
        "senderName": "Emma",
        "senderType": "customer",
        "recipientId": chat.therapist.id,
        "recipientName": "Wayan",
        "recipientType": "therapist",
        "content": "Halo, bisa pijat jam 3?",
        "messageType": "text",
        "originalLanguage": "id",
        "isSystemMessage": False,
        "roomId": None,
        "bookingId": None,
        "read": False,
        "readAt": None,
        "expiresAt": None,
        "sessionId": None,
        "clientMessageId": None,
    }
    assert {k: message[k] for k in expected} == expected
    assert message["createdAt"].endswith("Z")
    datetime.fromisoformat(message["createdAt"])
    # What the sender was told is what both parties read back.
    assert all_messages(client, chat.customer, chat.id) == [message]
    assert all_messages(client, chat.therapist, chat.id) == [message]


def test_send_keeps_the_optional_fields(api: Api, client: TestClient, chat: Chat):
    r = api.send(
        chat.therapist,
        chat.id,
        "See you soon",
        messageType="image",
        originalLanguage="en-US",
        clientMessageId="c-1",
        expiresAt="2030-01-02T08:00:00+08:00",
        sessionId="session-9",
        roomId="room-7",
    )
    assert r.status_code == 201, r.text
    message = r.json()
    assert message["senderType"] == "therapist" and message["recipientType"] == "customer"
    assert message["messageType"] == "image"
    assert message["originalLanguage"] == "en-US"
    assert message["clientMessageId"] == "c-1"
    assert message["expiresAt"] == "2030-01-02T00:00:00.000Z"
    assert message["sessionId"] == "session-9"
    assert message["roomId"] == "room-7"
    assert all_messages(client, chat.customer, chat.id) == [message]


@pytest.mark.parametrize(
    ("booker_role", "provider_role"),
    [("hotel", "therapist"), ("villa", "place"), ("agent", "therapist"), ("customer", "place")],
)
def test_sender_and_recipient_types_are_the_roles(
    api: Api, client: TestClient, booker_role: str, provider_role: str
):
    booker, provider = api.register(booker_role), api.register(provider_role)
    conversation_id = api.conversation(booker, provider)
    one = api.send(booker, conversation_id, "Room 12, please").json()
    two = api.send(provider, conversation_id, "On my way").json()
    assert (one["senderType"], one["recipientType"]) == (booker_role, provider_role)
    assert (two["senderType"], two["recipientType"]) == (provider_role, booker_role)
    assert (one["recipientId"], two["recipientId"]) == (provider.id, booker.id)


def test_messages_with_an_admin(api: Api, client: TestClient, make_admin: Any):
    admin = make_admin("Ops")
    therapist = api.register("therapist", "Wayan")
    conversation_id = api.conversation(therapist, admin)
    question = api.send(therapist, conversation_id, "Customer did not pay").json()
    answer = api.send(admin, conversation_id, "We are on it").json()
    assert (question["recipientType"], question["recipientName"]) == ("admin", "Ops")
    assert (answer["senderType"], answer["recipientId"]) == ("admin", therapist.id)
    assert conversation(client, admin, conversation_id)["unreadCount"] == 1


@pytest.mark.parametrize(
    "content",
    [
        "  leading and trailing spaces  ",
        "<script>alert('x')</script> &amp; <b>bold</b>",
        "line one\nline two\n\ttabbed ",
        "Terima kasih 🙏 — sampai jumpa",
        "x",
    ],
)
def test_content_is_stored_and_returned_exactly(
    api: Api, client: TestClient, chat: Chat, content: str
):
    r = api.send(chat.customer, chat.id, content)
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["content"] == content
    (stored,) = all_messages(client, chat.therapist, chat.id)
    assert stored["content"] == content
    assert listed(client, chat.therapist, chat.id)["lastMessage"]["content"] == content


@pytest.mark.parametrize("content", ["", " ", "   \n\t  ", "x" * 4001, " " + "y" * 4001 + " "])
def test_content_must_be_1_to_4000_characters_after_trimming(
    api: Api, client: TestClient, chat: Chat, content: str
):
    assert_invalid(api.send(chat.customer, chat.id, content), "content")
    assert all_messages(client, chat.customer, chat.id) == []


@pytest.mark.parametrize("content", ["z" * 4000, "   " + "z" * 4000 + "\n"])
def test_4000_characters_are_allowed(api: Api, client: TestClient, chat: Chat, content: str):
    r = api.send(chat.customer, chat.id, content)
    assert r.status_code == 201, r.text
    assert r.json()["content"] == content
    assert all_messages(client, chat.customer, chat.id)[0]["content"] == content


@pytest.mark.parametrize("body", [{}, {"content": None}, {"content": 5}, {"messageType": "text"}])
def test_content_is_required(client: TestClient, chat: Chat, body: dict[str, Any]):
    assert_invalid(post(client, chat.customer, chat.id, body), "content")
    assert all_messages(client, chat.customer, chat.id) == []


def test_whitespace_only_legacy_message_is_refused(client: TestClient, chat: Chat):
    r = post(client, chat.customer, chat.id, {"message": "    "})
    assert_invalid(r, "message")  # named as the client sent it
    assert all_messages(client, chat.customer, chat.id) == []


def test_a_repeated_client_message_id_stores_one_message(api: Api, client: TestClient, chat: Chat):
    first = api.send(chat.customer, chat.id, "Halo", clientMessageId="tap-1")
    assert first.status_code == 201, first.text
    again = api.send(chat.customer, chat.id, "Halo", clientMessageId="tap-1")
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    # Even a retry with different content answers the first message and stores nothing.
    changed = api.send(chat.customer, chat.id, "Halo!!", clientMessageId="tap-1")
    assert changed.status_code == 200
    assert changed.json() == first.json()
    assert all_messages(client, chat.therapist, chat.id) == [first.json()]
    assert listed(client, chat.therapist, chat.id)["unreadCount"] == 1


def test_the_same_client_message_id_from_the_other_party_is_another_message(
    api: Api, client: TestClient, chat: Chat
):
    mine = api.send(chat.customer, chat.id, "Halo", clientMessageId="shared-id")
    theirs = api.send(chat.therapist, chat.id, "Halo juga", clientMessageId="shared-id")
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert theirs.json()["senderId"] == chat.therapist.id
    assert [m["id"] for m in all_messages(client, chat.customer, chat.id)] == [
        mine.json()["id"],
        theirs.json()["id"],
    ]


def test_a_client_message_id_is_not_a_retry_in_another_conversation(
    api: Api, client: TestClient, chat: Chat
):
    other_provider = api.provider("place")
    elsewhere = api.conversation(chat.customer, other_provider)
    assert api.send(chat.customer, chat.id, "Halo", clientMessageId="m-1").status_code == 201
    r = api.send(chat.customer, elsewhere, "Halo", clientMessageId="m-1")
    assert_problem(r, 409, "client_message_id_reused")
    assert all_messages(client, chat.customer, elsewhere) == []


def test_a_huge_padding_of_whitespace_is_refused(client: TestClient, chat: Chat):
    r = post(client, chat.customer, chat.id, {"content": " " * 10_000 + "hi"})
    assert_invalid(r, "content")


def test_a_refused_send_does_not_use_up_the_client_message_id(
    api: Api, client: TestClient, chat: Chat
):
    assert_invalid(api.send(chat.customer, chat.id, "   ", clientMessageId="c-9"), "content")
    r = api.send(chat.customer, chat.id, "now with text", clientMessageId="c-9")
    assert r.status_code == 201, r.text
    assert [m["content"] for m in all_messages(client, chat.customer, chat.id)] == ["now with text"]


def test_legacy_field_names_are_accepted(client: TestClient, chat: Chat):
    r = post(
        client,
        chat.customer,
        chat.id,
        {
            "message": "pakai nama lama",
            "receiverId": chat.therapist.id,
            "receivername": "someone else entirely",
        },
    )
    assert r.status_code == 201, r.text
    message = r.json()
    assert message["content"] == "pakai nama lama"
    assert message["recipientId"] == chat.therapist.id
    assert message["recipientName"] == "Wayan"  # the real name, not the one the client sent
    assert all_messages(client, chat.therapist, chat.id) == [message]


@pytest.mark.parametrize("field", ["receiverId", "recipientId"])
def test_a_recipient_that_is_not_the_other_party_is_refused(
    api: Api, client: TestClient, chat: Chat, field: str
):
    stranger = api.register("therapist")
    for recipient in (stranger.id, chat.customer.id, UNKNOWN_ID):
        r = post(client, chat.customer, chat.id, {"content": "hi", field: recipient})
        assert_invalid(r, "recipientId")
    assert all_messages(client, chat.customer, chat.id) == []


@pytest.mark.parametrize("message_type", ["system", "booking", "sticker"])
def test_clients_cannot_send_server_message_types(
    api: Api, client: TestClient, chat: Chat, message_type: str
):
    assert_invalid(api.send(chat.customer, chat.id, "x", messageType=message_type), "messageType")
    assert all_messages(client, chat.customer, chat.id) == []


@pytest.mark.parametrize("message_type", ["text", "image", "file"])
def test_clients_may_send_text_image_and_file(
    api: Api, client: TestClient, chat: Chat, message_type: str
):
    r = api.send(chat.customer, chat.id, "https://cdn.example/x", messageType=message_type)
    assert r.status_code == 201, r.text
    assert r.json()["messageType"] == message_type


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("originalLanguage", "not a language"),
        ("originalLanguage", ""),
        ("expiresAt", "2030-01-01T00:00:00"),
        ("expiresAt", "tomorrow"),
        ("clientMessageId", ""),
        ("clientMessageId", "c" * 101),
    ],
)
def test_bad_optional_fields_are_refused(
    api: Api, client: TestClient, chat: Chat, field: str, value: str
):
    assert_invalid(api.send(chat.customer, chat.id, "hi", **{field: value}), field)
    assert all_messages(client, chat.customer, chat.id) == []


def test_booking_id_must_be_a_booking_of_this_conversation(api: Api, client: TestClient):
    customer = api.register("customer")
    therapist, other = api.provider("therapist"), api.provider("therapist")
    here = api.book(customer, therapist)
    elsewhere = api.book(customer, other)
    conversation_id = here["conversation"]["id"]
    before = all_messages(client, customer, conversation_id)

    for booking_id in (elsewhere["booking"]["id"], UNKNOWN_ID):
        r = api.send(customer, conversation_id, "about that booking", bookingId=booking_id)
        assert_invalid(r, "bookingId")
    assert all_messages(client, customer, conversation_id) == before

    ok = api.send(therapist, conversation_id, "confirmed", bookingId=here["booking"]["id"])
    assert ok.status_code == 201, ok.text
    assert ok.json()["bookingId"] == here["booking"]["id"]


def test_strangers_cannot_send_and_admins_only_into_their_own(
    api: Api, client: TestClient, chat: Chat, make_admin: Any
):
    stranger = api.register("customer")
    admin = make_admin("Ops")
    assert_problem(api.send(stranger, chat.id, "hi"), 404, "not_found")
    assert_problem(api.send(admin, chat.id, "hi"), 403, "forbidden")
    assert_problem(api.send(chat.customer, UNKNOWN_ID, "hi"), 404, "not_found")
    assert all_messages(client, chat.customer, chat.id) == []
    # An admin reads any conversation and its messages.
    api.send(chat.customer, chat.id, "hello")
    assert [m["content"] for m in all_messages(client, admin, chat.id)] == ["hello"]
    assert conversation(client, admin, chat.id)["lastMessage"]["content"] == "hello"

    own = api.conversation(admin, chat.customer)
    r = api.send(admin, own, "A notice from pesan", messageType="notification")
    assert r.status_code == 201, r.text
    assert r.json()["senderType"] == "admin" and r.json()["recipientId"] == chat.customer.id
    assert r.json()["messageType"] == "notification"


def test_only_admins_send_notifications(api: Api, client: TestClient, chat: Chat):
    r = api.send(chat.customer, chat.id, "Official notice", messageType="notification")
    assert_invalid(r, "messageType")
    assert all_messages(client, chat.customer, chat.id) == []


def test_sending_moves_the_conversation_to_the_top(api: Api, client: TestClient, chat: Chat):
    other = api.conversation(chat.customer, api.register("place"))
    r = client.get("/api/v1/conversations", headers=chat.customer.headers)
    assert [c["id"] for c in r.json()["items"]] == [other, chat.id]
    sent = api.send(chat.therapist, chat.id, "Halo").json()
    r = client.get("/api/v1/conversations", headers=chat.customer.headers)
    assert [c["id"] for c in r.json()["items"]] == [chat.id, other]
    top = r.json()["items"][0]
    assert top["lastMessage"] == sent and top["unreadCount"] == 1
    assert top["updatedAt"] >= sent["createdAt"]


# ---- history ---------------------------------------------------------------------------------


def test_history_is_oldest_first(api: Api, client: TestClient, chat: Chat):
    sent = send_many(api, chat, 5)
    r = history(client, chat.therapist, chat.id)
    assert r.status_code == 200, r.text
    assert r.json() == {"items": sent, "nextCursor": None}


def test_history_walks_forward_with_next_cursor(api: Api, client: TestClient, chat: Chat):
    sent = send_many(api, chat, 25)
    ids = [m["id"] for m in sent]
    seen: list[str] = []
    sizes: list[int] = []
    params: dict[str, Any] = {"limit": 10}
    while True:
        page = history(client, chat.customer, chat.id, **params).json()
        sizes.append(len(page["items"]))
        seen += [m["id"] for m in page["items"]]
        if page["nextCursor"] is None:
            break
        assert page["nextCursor"] == page["items"][-1]["id"]
        params = {"limit": 10, "after": page["nextCursor"]}
    assert sizes == [10, 10, 5]
    assert seen == ids


def test_cursor_is_a_synonym_of_after(api: Api, client: TestClient, chat: Chat):
    sent = send_many(api, chat, 6)
    first = history(client, chat.customer, chat.id, limit=4).json()
    second = history(client, chat.customer, chat.id, limit=4, cursor=first["nextCursor"]).json()
    assert [m["id"] for m in first["items"] + second["items"]] == [m["id"] for m in sent]
    assert second["nextCursor"] is None


def test_history_walks_backward_with_before(api: Api, client: TestClient, chat: Chat):
    sent = send_many(api, chat, 25)
    ids = [m["id"] for m in sent]
    newest = conversation(client, chat.therapist, chat.id)["lastMessage"]["id"]
    assert newest == ids[-1]

    pages: list[list[str]] = []
    anchor = newest
    while True:
        page = history(client, chat.therapist, chat.id, limit=10, before=anchor).json()
        page_ids = [m["id"] for m in page["items"]]
        assert page_ids == sorted(page_ids)  # each page is oldest first too
        pages.append(page_ids)
        if page["nextCursor"] is None:
            break
        assert page["nextCursor"] == page_ids[0]
        anchor = page["nextCursor"]
    assert [len(p) for p in pages] == [10, 10, 4]
    walked = [i for page in reversed(pages) for i in page] + [newest]
    assert walked == ids


def test_before_and_after_ends(api: Api, client: TestClient, chat: Chat):
    sent = send_many(api, chat, 3)
    oldest, newest = sent[0]["id"], sent[-1]["id"]
    assert history(client, chat.customer, chat.id, after=newest).json() == {
        "items": [],
        "nextCursor": None,
    }
    assert history(client, chat.customer, chat.id, before=oldest).json() == {
        "items": [],
        "nextCursor": None,
    }
    assert history(client, chat.customer, chat.id, before=newest, limit=2).json() == {
        "items": sent[:2],
        "nextCursor": None,
    }
    assert history(client, chat.customer, chat.id, after=oldest, limit=2).json() == {
        "items": sent[1:],
        "nextCursor": None,
    }


def test_a_cursor_from_another_conversation_is_refused(api: Api, client: TestClient, chat: Chat):
    send_many(api, chat, 2)
    elsewhere = api.conversation(chat.customer, api.register("place"))
    foreign = api.send(chat.customer, elsewhere, "elsewhere").json()["id"]
    for name in ("after", "before"):
        assert_invalid(history(client, chat.customer, chat.id, **{name: foreign}), name)
        assert_invalid(history(client, chat.customer, chat.id, **{name: UNKNOWN_ID}), name)
    assert_invalid(history(client, chat.customer, chat.id, cursor=foreign), "after")


def test_after_and_before_together_are_refused(api: Api, client: TestClient, chat: Chat):
    sent = send_many(api, chat, 3)
    r = history(client, chat.customer, chat.id, after=sent[0]["id"], before=sent[2]["id"])
    assert r.status_code == 422, r.text


@pytest.mark.parametrize("limit", [0, 201, -1, "ten"])
def test_history_limit_bounds(client: TestClient, chat: Chat, limit: Any):
    assert_invalid(history(client, chat.customer, chat.id, limit=limit), "limit")


def test_history_for_its_parties_and_admins_only(
    api: Api, client: TestClient, chat: Chat, make_admin: Any
):
    sent = send_many(api, chat, 2)
    assert [m["id"] for m in all_messages(client, make_admin(), chat.id)] == [m["id"] for m in sent]
    for role in ("customer", "therapist", "place", "agent"):
        assert_problem(history(client, api.register(role), chat.id), 404, "not_found")
    assert_problem(history(client, chat.customer, UNKNOWN_ID), 404, "not_found")


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(limit=st.integers(min_value=1, max_value=14), backwards=st.booleans())
def test_pages_concatenated_are_the_whole_history(
    api: Api, client: TestClient, chat: Chat, limit: int, backwards: bool
):
    # The chat fixture lives for the whole test function, so messages are sent only once.
    if not all_messages(client, chat.customer, chat.id):
        send_many(api, chat, 13)
    everything = [m["id"] for m in all_messages(client, chat.customer, chat.id)]
    if backwards:
        walked: list[str] = []
        anchor = everything[-1]
        while anchor:
            page = history(client, chat.customer, chat.id, limit=limit, before=anchor).json()
            assert len(page["items"]) <= limit
            walked = [m["id"] for m in page["items"]] + walked
            anchor = page["nextCursor"]
        assert [*walked, everything[-1]] == everything
    else:
        walked = []
        params: dict[str, Any] = {"limit": limit}
        while True:
            page = history(client, chat.customer, chat.id, **params).json()
            assert len(page["items"]) <= limit
            walked += [m["id"] for m in page["items"]]
            if page["nextCursor"] is None:
                break
            params = {"limit": limit, "after": page["nextCursor"]}
        assert walked == everything


@pytest.mark.parametrize(
    ("direction", "keyset"), [("after", "messages.id >"), ("before", "messages.id <")]
)
def test_history_reads_through_the_conversation_index(
    api: Api, client: TestClient, chat: Chat, app: FastAPI, direction: str, keyset: str
):
    sent = send_many(api, chat, 4)
    engine = app.state.db.engine
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "FROM messages" in statement and "ORDER BY" in statement:
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        r = history(client, chat.customer, chat.id, limit=2, **{direction: sent[1]["id"]})
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert r.status_code == 200 and len(r.json()["items"]) == (2 if direction == "after" else 1)
    (statement, parameters) = statements[-1]
    if "OFFSET" in statement.upper():  # SQLAlchemy's SQLite dialect always writes OFFSET
        assert engine.dialect.name == "sqlite" and parameters[-1] == 0, (statement, parameters)
    assert keyset in statement  # a keyset page, not skipped rows

    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        else:
            # A handful of rows: tell the planner a table scan is dear, as it is at scale.
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            rows = conn.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        plan = " ".join(str(row) for row in rows)
    assert "ix_messages_conversation_id_id" in plan, plan


# ---- read receipts ---------------------------------------------------------------------------


def test_read_marks_only_my_received_messages_up_to_the_id(
    api: Api, client: TestClient, chat: Chat
):
    c1 = api.send(chat.customer, chat.id, "c1").json()
    t1 = api.send(chat.therapist, chat.id, "t1").json()
    t2 = api.send(chat.therapist, chat.id, "t2").json()
    c2 = api.send(chat.customer, chat.id, "c2").json()
    t3 = api.send(chat.therapist, chat.id, "t3").json()
    assert conversation(client, chat.customer, chat.id)["unreadCount"] == 3
    assert listed(client, chat.customer, chat.id)["unreadCount"] == 3

    r = mark_read(client, chat.customer, chat.id, t2["id"])
    assert r.status_code == 200, r.text
    receipt = r.json()
    assert receipt["conversationId"] == chat.id
    assert receipt["readerId"] == chat.customer.id
    assert receipt["upToMessageId"] == t2["id"]
    assert receipt["marked"] == 2 and receipt["unreadCount"] == 1
    assert receipt["readAt"].endswith("Z")

    state = {m["id"]: m for m in all_messages(client, chat.therapist, chat.id)}
    for message in (t1, t2):
        assert state[message["id"]]["read"] is True
        assert state[message["id"]]["readAt"] == receipt["readAt"]
    for message in (c1, c2, t3):
        assert state[message["id"]]["read"] is False
        assert state[message["id"]]["readAt"] is None

    assert conversation(client, chat.customer, chat.id)["unreadCount"] == 1
    assert listed(client, chat.customer, chat.id)["unreadCount"] == 1
    # The other side's count is about its own received messages: untouched.
    assert conversation(client, chat.therapist, chat.id)["unreadCount"] == 2

    again = mark_read(client, chat.customer, chat.id, t2["id"])
    assert again.status_code == 200
    assert again.json()["marked"] == 0 and again.json()["unreadCount"] == 1
    assert {m["id"]: m for m in all_messages(client, chat.therapist, chat.id)} == state

    # Up to my own message: marks what I received before it, never my own.
    mark_read(client, chat.customer, chat.id, c2["id"])
    assert conversation(client, chat.customer, chat.id)["unreadCount"] == 1
    everything = mark_read(client, chat.customer, chat.id, t3["id"]).json()
    assert everything["marked"] == 1 and everything["unreadCount"] == 0
    assert listed(client, chat.customer, chat.id)["unreadCount"] == 0
    assert [m["read"] for m in all_messages(client, chat.customer, chat.id)] == [
        False,
        True,
        True,
        False,
        True,
    ]


def test_reading_other_side(api: Api, client: TestClient, chat: Chat):
    c1 = api.send(chat.customer, chat.id, "c1").json()
    c2 = api.send(chat.customer, chat.id, "c2").json()
    r = mark_read(client, chat.therapist, chat.id, c1["id"])
    assert r.json()["marked"] == 1 and r.json()["unreadCount"] == 1
    seen_by_sender = all_messages(client, chat.customer, chat.id)
    assert [(m["id"], m["read"]) for m in seen_by_sender] == [(c1["id"], True), (c2["id"], False)]
    assert conversation(client, chat.therapist, chat.id)["lastMessage"]["read"] is False


def test_read_refuses_a_message_of_another_conversation(api: Api, client: TestClient, chat: Chat):
    api.send(chat.therapist, chat.id, "t1")
    elsewhere = api.conversation(chat.customer, api.register("place"))
    foreign = api.send(chat.customer, elsewhere, "elsewhere").json()["id"]
    for up_to in (foreign, UNKNOWN_ID):
        assert_invalid(mark_read(client, chat.customer, chat.id, up_to), "upToMessageId")
    r = client.post(f"/api/v1/conversations/{chat.id}/read", headers=chat.customer.headers, json={})
    assert_invalid(r, "upToMessageId")
    assert conversation(client, chat.customer, chat.id)["unreadCount"] == 1


def test_only_parties_mark_read(api: Api, client: TestClient, chat: Chat, make_admin: Any):
    sent = api.send(chat.therapist, chat.id, "t1").json()
    assert_problem(
        mark_read(client, api.register("customer"), chat.id, sent["id"]), 404, "not_found"
    )
    assert_problem(mark_read(client, make_admin(), chat.id, sent["id"]), 403, "forbidden")
    assert conversation(client, chat.customer, chat.id)["unreadCount"] == 1
    assert all_messages(client, chat.customer, chat.id)[0]["read"] is False


def test_book_now_message_is_unread_for_the_provider(api: Api, client: TestClient):
    customer = api.register("customer")
    therapist = api.provider("therapist")
    booked = api.book(customer, therapist)
    conversation_id = booked["conversation"]["id"]
    assert conversation(client, therapist, conversation_id)["unreadCount"] == 1
    assert conversation(client, customer, conversation_id)["unreadCount"] == 0
    r = mark_read(client, therapist, conversation_id, booked["message"]["id"])
    assert r.json()["marked"] == 1
    assert listed(client, therapist, conversation_id)["unreadCount"] == 0


def test_status_changes_appear_as_system_messages(api: Api, client: TestClient):
    customer = api.register("customer", "Emma")
    therapist = api.provider("therapist")
    booked = api.book(customer, therapist)
    conversation_id = booked["conversation"]["id"]
    assert api.act(therapist, booked["booking"]["id"], "accept").status_code == 200
    request, update = all_messages(client, customer, conversation_id)
    assert request == booked["message"]
    assert request["messageType"] == "booking" and request["senderId"] == customer.id
    assert set(update) == MESSAGE_FIELDS
    assert update["messageType"] == "system" and update["isSystemMessage"] is True
    assert update["senderId"] == "system" and update["senderType"] == "system"
    assert update["recipientId"] == customer.id and update["recipientName"] == "Emma"
    assert update["bookingId"] == booked["booking"]["id"]
    assert conversation(client, customer, conversation_id)["unreadCount"] == 1
    assert conversation(client, customer, conversation_id)["lastMessage"] == update


# ---- input that a database cannot hold -------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("content", "nul \x00 inside"),
        ("message", "nul \x00 inside"),
        ("clientMessageId", "c\x00"),
        ("roomId", "r\x00"),
        ("sessionId", "s\x00"),
        ("bookingId", "b\x00"),
    ],
)
def test_a_nul_character_is_refused_not_a_server_error(
    client: TestClient, chat: Chat, field: str, value: str
):
    body = {field: value} if field == "message" else {"content": "hi", field: value}
    r = post(client, chat.customer, chat.id, body)
    assert r.status_code == 422, r.text
    if field != "message":
        assert_invalid(r, field)
    assert all_messages(client, chat.customer, chat.id) == []


def test_a_nul_character_in_ids_is_not_a_server_error(api: Api, client: TestClient, chat: Chat):
    api.send(chat.therapist, chat.id, "t1")
    bad = "01J\x00"
    assert_invalid(history(client, chat.customer, "01J%00"), "path")
    assert_invalid(api.send(chat.customer, "01J%00", "hi"), "path")
    for name in ("after", "before"):
        assert_invalid(history(client, chat.customer, chat.id, **{name: bad}), "query")
    assert_invalid(history(client, chat.customer, chat.id, after="01J"), "after")
    assert_invalid(mark_read(client, chat.customer, chat.id, bad), "upToMessageId")
    assert conversation(client, chat.customer, chat.id)["unreadCount"] == 1


# ---- concurrent requests ---------------------------------------------------------------------


def test_a_double_tap_stores_one_message(client: TestClient, chat: Chat):
    body = {"content": "Sudah sampai", "clientMessageId": "double-tap"}
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: post(client, chat.customer, chat.id, body), range(4)))
    assert sorted(r.status_code for r in answers) == [200, 200, 200, 201], [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    assert len(all_messages(client, chat.therapist, chat.id)) == 1
    assert listed(client, chat.therapist, chat.id)["unreadCount"] == 1
