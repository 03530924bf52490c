"""More of the live contract: every device, cookie auth, metrics, and the broker in doctor."""

import json
import os
import subprocess
import sys

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.live.conftest import OPERATOR, Rest, free_port, open_live

pytestmark = pytest.mark.slow


def test_every_device_of_every_party_gets_each_event(server):
    rest = Rest(server.base)
    customer, therapist = rest.register("customer"), rest.provider()
    phone, laptop = (
        open_live(server.ws_url, customer.token),
        open_live(server.ws_url, customer.token),
    )
    t_phone = open_live(server.ws_url, therapist.token)
    booking = rest.book(customer, therapist)["booking"]
    for live in (phone, laptop, t_phone):
        assert live.next_of("booking.created")["data"]["id"] == booking["id"]
    r = rest.http.post(f"/bookings/{booking['id']}/accept", headers=therapist.headers)
    assert r.status_code == 200
    frames = [live.next_of("booking.updated") for live in (phone, laptop, t_phone)]
    assert {f["data"]["status"] for f in frames} == {"accepted"}
    assert frames[0]["id"] == frames[1]["id"]  # one event, one id, on both devices
    conversation_path = f"/conversations/{booking['conversationId']}"
    last = rest.http.get(conversation_path, headers=customer.headers).json()["lastMessage"]
    read = rest.http.post(
        f"{conversation_path}/read", headers=customer.headers, json={"upToMessageId": last["id"]}
    )
    assert read.status_code == 200
    seen = t_phone.next_of("message.read")
    assert seen["data"]["readerId"] == customer.id
    update = phone.next_of("conversation.updated")
    while update["data"]["unreadCount"] != 0:
        update = phone.next_of("conversation.updated")
    for live in (phone, laptop, t_phone):
        live.close()


def test_session_cookie_auth_only_from_the_same_origin(server):
    rest = Rest(server.base)
    customer = rest.register("customer")
    cookie = {"Cookie": f"pesan_session={customer.token}"}
    with connect(server.ws_url, additional_headers=cookie) as sock:
        sock.send(json.dumps({"type": "auth", "token": None, "lastEventId": None}))
        assert json.loads(sock.recv(timeout=5))["type"] == "ready"
    hostile = {**cookie, "Origin": "https://evil.example"}
    with connect(server.ws_url, additional_headers=hostile) as sock:
        sock.send(json.dumps({"type": "auth", "token": None, "lastEventId": None}))
        with pytest.raises(ConnectionClosed) as closed:
            sock.recv(timeout=5)
        assert closed.value.rcvd.code == 4401


def test_live_metrics_are_exported(server):
    rest = Rest(server.base)
    customer, therapist = rest.register("customer"), rest.provider()
    live = open_live(server.ws_url, customer.token)
    rest.book(customer, therapist)
    live.next_of("booking.created")
    text = httpx.get(f"{server.base}/metrics", headers=OPERATOR, timeout=5).text
    assert "pesan_ws_connections 1.0" in text
    assert 'pesan_events_delivered_total{type="booking.created"}' in text
    assert "pesan_event_delivery_lag_seconds_count" in text
    live.close()


def test_doctor_reports_an_unreachable_broker(tmp_path):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PESAN_")},
        "PESAN_DATA_DIR": str(tmp_path / "data"),
        "PESAN_REDIS_URL": dead,
    }
    subprocess.run(
        [sys.executable, "-m", "pesan", "db", "upgrade"], env=env, timeout=60, check=True
    )
    done = subprocess.run(
        [sys.executable, "-m", "pesan", "doctor"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    broker_line = next(line for line in done.stdout.splitlines() if " broker " in line)
    assert broker_line.startswith("FAIL") and "PESAN_REDIS_URL" in broker_line


def test_a_binary_or_garbage_frame_is_ignored_not_fatal(server):
    rest = Rest(server.base)
    customer = rest.register("customer")
    live = open_live(server.ws_url, customer.token)
    live.socket.send(b"\x00\x01binary")
    live.socket.send("not json")
    live.socket.send(json.dumps([1, 2]))
    live.socket.send(json.dumps({"type": "ping"}))
    assert live.next_of("pong") == {"type": "pong"}
    live.close()
