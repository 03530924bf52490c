"""Unread counts are kept on each participant's row by every send, card and read; they must
always equal the messages actually unread (the count the server no longer makes)."""

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import Api

COUNTED = text(
    "SELECT p.user_id, p.unread_count, (SELECT count(*) FROM messages m"
    " WHERE m.conversation_id = p.conversation_id AND m.recipient_id = p.user_id"
    " AND NOT m.read) FROM conversation_participants p"
)


def test_counters_follow_sends_cards_and_reads(app: FastAPI, api: Api, client: TestClient) -> None:
    customer, provider = api.register("customer"), api.provider()
    booked = api.book(customer, provider)  # the booking card: one unread for the provider
    conversation = booked["conversation"]["id"]
    for i in range(3):
        assert api.send(customer, conversation, f"message {i}").status_code == 201
    assert api.send(provider, conversation, "On my way soon").status_code == 201
    assert api.act(provider, booked["booking"]["id"], "accept").status_code == 200
    items = client.get(
        f"/api/v1/conversations/{conversation}/messages", headers=provider.headers
    ).json()["items"]
    r = client.post(
        f"/api/v1/conversations/{conversation}/read",
        headers=provider.headers,
        json={"upToMessageId": items[2]["id"]},  # the card and the first two messages
    )
    assert r.status_code == 200, r.text
    assert r.json()["unreadCount"] == 1

    def unread_of(who: object) -> int:
        page = client.get("/api/v1/conversations", headers=who.headers).json()  # type: ignore[attr-defined]
        return int(page["items"][0]["unreadCount"])

    assert unread_of(provider) == 1  # message 2
    assert unread_of(customer) == 2  # the provider's message and the acceptance
    with app.state.db.engine.connect() as conn:
        rows = conn.execute(COUNTED).all()
    assert rows
    assert all(kept == counted for _, kept, counted in rows), rows
