"""What `pesan serve` itself (uvicorn) is told: no Server banner, the frame limit, and the
client address behind a trusted proxy for per-address limits."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.system.conftest import pesan_env

pytestmark = pytest.mark.slow


def test_serve_sends_no_banner_and_limits_frames_and_addresses(
    tmp_path: Path, start_server: Any
) -> None:
    env = {
        **pesan_env(data_dir=tmp_path / "data"),
        "PESAN_LIMITS_ENABLED": "true",
        "PESAN_LIMIT_LOGIN_ADDRESS": "2/minute",
        "PESAN_WS_MAX_FRAME_BYTES": "4096",
    }
    server = start_server(env, tmp_path)
    server.wait_ready()
    r = httpx.get(f"{server.url}/healthz")
    assert "server" not in r.headers
    assert r.headers["x-content-type-options"] == "nosniff"

    def login(client_address: str) -> int:
        return httpx.post(
            f"{server.url}/api/v1/auth/login",
            json={"email": "someone@example.com", "password": "guess"},
            headers={"X-Forwarded-For": client_address},
        ).status_code

    # Through a trusted proxy (127.0.0.1), each client is counted by its own address.
    assert [login("203.0.113.1") for _ in range(3)] == [401, 401, 429]
    assert login("203.0.113.2") == 401

    with connect(f"ws://127.0.0.1:{server.port}/api/v1/ws", open_timeout=10) as ws:
        ws.send(json.dumps({"type": "auth", "token": "x" * 8000}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
