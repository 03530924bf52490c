"""A peer that stops answering pings is dropped: its socket closes and the gauge goes down.

The client here is a raw TCP socket that speaks just enough WebSocket to authenticate and
then never answers the server's pings, as a phone that lost its network would.
"""

import base64
import json
import os
import socket
import struct
import time
from pathlib import Path

import httpx
import pytest

from tests.live.conftest import OPERATOR, Rest

pytestmark = pytest.mark.slow


def masked_text_frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    header = bytes([0x81])
    if len(payload) < 126:
        header += bytes([0x80 | len(payload)])
    else:
        header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def silent_client(port: int, token: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /api/v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(4096)
    assert response.startswith(b"HTTP/1.1 101"), response
    sock.sendall(
        masked_text_frame(json.dumps({"type": "auth", "token": token, "lastEventId": None}))
    )
    return sock


def open_sockets(base: str) -> float:
    for line in httpx.get(f"{base}/metrics", headers=OPERATOR, timeout=5).text.splitlines():
        if line.startswith("pesan_ws_connections "):
            return float(line.split()[1])
    raise AssertionError("no pesan_ws_connections metric")


def test_a_peer_that_never_answers_pings_is_dropped(servers, tmp_path: Path):
    server = servers(PESAN_DATA_DIR=str(tmp_path / "data"), PESAN_WS_PING_INTERVAL_SECONDS="0.5")
    customer = Rest(server.base).register("customer")
    sock = silent_client(server.port, customer.token)
    deadline = time.monotonic() + 5
    while open_sockets(server.base) != 1.0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_sockets(server.base) == 1.0

    # Read (and ignore pings) until the server hangs up.
    sock.settimeout(1)
    closed_at = None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if sock.recv(4096) == b"":
                closed_at = time.monotonic()
                break
        except TimeoutError:
            continue
        except ConnectionResetError:
            closed_at = time.monotonic()
            break
    sock.close()
    assert closed_at is not None, "the server kept a silent peer"
    deadline = time.monotonic() + 5
    while open_sockets(server.base) != 0.0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_sockets(server.base) == 0.0
