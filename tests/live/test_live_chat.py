"""Live chat over real sockets against a running server (embedded SQLite)."""

import json

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.live.conftest import Rest, open_live

pytestmark = pytest.mark.slow


def test_two_users_chat_live(server):
    rest = Rest(server.base)
    customer, therapist = rest.register("customer"), rest.provider()
    answer = rest.book(customer, therapist)
    conversation_id = answer["conversation"]["id"]
    c_live = open_live(server.ws_url, customer.token)
    t_live = open_live(server.ws_url, therapist.token)

    sent = rest.send(customer, conversation_id, "Halo, saya di villa 3")
    frame = t_live.next_of("message.created")
    assert frame["data"]["id"] == sent["id"] and frame["data"]["content"] == "Halo, saya di villa 3"
    update = t_live.next_of("conversation.updated")
    assert update["data"]["unreadCount"] == 2  # the booking card and this message
    own = c_live.next_of("message.created")
    assert own["data"]["id"] == sent["id"]
    c_live.close()
    t_live.close()


def test_reconnect_gets_exactly_the_missed_events_in_order(server):
    rest = Rest(server.base)
    customer, therapist = rest.register("customer"), rest.provider()
    answer = rest.book(customer, therapist)
    conversation_id, booking_id = answer["conversation"]["id"], answer["booking"]["id"]
    first = open_live(server.ws_url, customer.token)
    last_seen = first.ready["lastEventId"]
    first.close()

    sent_ids = [rest.send(therapist, conversation_id, f"pesan {i}")["id"] for i in range(20)]
    r = rest.http.post(f"/bookings/{booking_id}/accept", headers=therapist.headers)
    assert r.status_code == 200

    again = open_live(server.ws_url, customer.token, last_seen)
    missed = again.before_ready
    ids = [f["id"] for f in missed]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(i > last_seen for i in ids)
    assert again.ready["lastEventId"] == ids[-1]
    created = [f["data"]["id"] for f in missed if f["type"] == "message.created"]
    assert created[:20] == sent_ids  # then the system message of the accept
    assert next(f for f in missed if f["type"] == "booking.updated")["data"]["status"] == "accepted"

    # the same resume twice gives the same ids
    third = open_live(server.ws_url, customer.token, last_seen)
    assert [f["id"] for f in third.before_ready] == ids
    again.close()
    third.close()


def test_typing_reaches_the_other_party_only_and_is_not_stored(server):
    rest = Rest(server.base)
    customer, therapist = rest.register("customer"), rest.provider()
    stranger = rest.register("customer")
    conversation_id = rest.book(customer, therapist)["conversation"]["id"]
    c_live = open_live(server.ws_url, customer.token)
    t_live = open_live(server.ws_url, therapist.token)
    s_live = open_live(server.ws_url, stranger.token)

    s_live.socket.send(json.dumps({"type": "typing", "conversationId": conversation_id}))
    c_live.socket.send(json.dumps({"type": "typing", "conversationId": conversation_id}))
    frame = t_live.next_of("typing")
    assert frame == {
        "type": "typing",
        "data": {"conversationId": conversation_id, "userId": customer.id},
    }
    # nothing durable was made: a resume from the ready id replays nothing
    again = open_live(server.ws_url, therapist.token, t_live.ready["lastEventId"])
    assert again.before_ready == []
    # the stranger's typing reached nobody, and the typist does not hear itself
    rest.send(customer, conversation_id, "marker")
    frames = t_live.until(lambda f: f["type"] == "message.created")
    assert not any(f["type"] == "typing" for f in frames)
    frames = c_live.until(lambda f: f["type"] == "message.created")
    assert not any(f["type"] == "typing" for f in frames)
    for live in (c_live, t_live, s_live, again):
        live.close()


def test_no_events_of_conversations_one_is_not_in(server):
    rest = Rest(server.base)
    customer, therapist, outsider = (
        rest.register("customer"),
        rest.provider(),
        rest.register("customer"),
    )
    o_live = open_live(server.ws_url, outsider.token)
    conversation_id = rest.book(customer, therapist)["conversation"]["id"]
    rest.send(customer, conversation_id, "private")
    # the outsider's own new event comes through, and nothing else did before it
    other = rest.provider()
    rest.book(outsider, other)
    frames = o_live.until(lambda f: f["type"] == "booking.created")
    assert all(conversation_id not in json.dumps(f) for f in frames)
    o_live.close()


def test_auth_failures_close_with_4401_and_timeout_4408(servers, tmp_path):
    server = servers(PESAN_DATA_DIR=str(tmp_path / "d2"), PESAN_WS_AUTH_TIMEOUT_SECONDS="0.5")
    with connect(server.ws_url) as sock:
        sock.send(json.dumps({"type": "auth", "token": "nope", "lastEventId": None}))
        with pytest.raises(ConnectionClosed) as closed:
            sock.recv(timeout=5)
        assert closed.value.rcvd.code == 4401
    with connect(server.ws_url) as sock:
        with pytest.raises(ConnectionClosed) as closed:
            sock.recv(timeout=5)
        assert closed.value.rcvd.code == 4408


def test_an_unknown_last_event_id_gets_resync(server):
    rest = Rest(server.base)
    customer = rest.register("customer")
    live = open_live(server.ws_url, customer.token, "999999999999")
    assert live.before_ready == [{"type": "resync"}]
    live.close()


@pytest.mark.parametrize("last_event_id", [42, "abc", "", "٣"])
def test_a_malformed_last_event_id_gets_resync(server, last_event_id):
    rest = Rest(server.base)
    customer = rest.register("customer")
    live = open_live(server.ws_url, customer.token, last_event_id)
    assert live.before_ready == [{"type": "resync"}]
    live.close()
