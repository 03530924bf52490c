"""Real servers in subprocesses, real sockets: the live-event tests talk to 127.0.0.1 only."""

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.conftest import Account

DEADLINE = 20.0
OPERATOR_TOKEN = "operator-token"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/ws"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_server(env_extra: dict[str, str], log_dir: Path) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PESAN_")}
    env.update(
        {
            "PESAN_ARGON2_TIME_COST": "1",
            "PESAN_ARGON2_MEMORY_KIB": "64",
            "PESAN_LOG_FORMAT": "text",
            "PESAN_WS_POLL_SECONDS": "30",
            "PESAN_METRICS_TOKEN": OPERATOR_TOKEN,
            "PESAN_LIMITS_ENABLED": "false",
        }
    )
    env.update(env_extra)
    log = log_dir / f"server-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "pesan", "serve", "--port", str(port)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    server = Server(process, port, log)
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.base}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server not ready in time: {log.read_text()[-3000:]}")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Any]:
    started: list[Server] = []

    def start(**env: str) -> Server:
        server = start_server(env, tmp_path)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(servers: Any, tmp_path: Path) -> Server:
    """One `pesan serve` on a fresh embedded database."""
    return servers(PESAN_DATA_DIR=str(tmp_path / "data"))  # type: ignore[no-any-return]


class Rest:
    """The REST API of one running server."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base + "/api/v1", timeout=10)

    def register(self, role: str) -> Account:
        email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        r = self.http.post(
            "/auth/register",
            json={"email": email, "password": "correct horse", "name": role.title(), "role": role},
        )
        assert r.status_code == 201, r.text
        body = r.json()
        return Account(body["user"]["id"], body["token"], role, role.title(), email)

    def provider(self) -> Account:
        account = self.register("therapist")
        h = account.headers
        assert self.http.put("/providers/me", headers=h, json={"area": "Ubud"}).status_code == 200
        r = self.http.post(
            "/providers/me/services",
            headers=h,
            json={"name": "Massage", "durationMinutes": 60, "price": {"amount": 150000}},
        )
        account.service_ids.append(r.json()["id"])
        self.http.put("/providers/me/presence", headers=h, json={"presence": "available"})
        return account

    def book(self, booker: Account, provider: Account) -> dict[str, Any]:
        r = self.http.post(
            "/bookings",
            headers=booker.headers,
            json={
                "providerId": provider.id,
                "serviceId": provider.service_ids[0],
                "mode": "now",
                "location": {"kind": "home", "address": "Jl. Raya Ubud 1"},
            },
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    def send(self, who: Account, conversation_id: str, content: str) -> dict[str, Any]:
        r = self.http.post(
            f"/conversations/{conversation_id}/messages",
            headers=who.headers,
            json={"content": content},
        )
        assert r.status_code == 201, r.text
        return dict(r.json())


@dataclass
class Live:
    """One client socket, with what it has received."""

    socket: ClientConnection
    ready: dict[str, Any]
    before_ready: list[dict[str, Any]] = field(default_factory=list)

    def next(self, timeout: float = 10.0) -> dict[str, Any]:
        return dict(json.loads(self.socket.recv(timeout=timeout)))

    def next_of(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            frame = self.next(max(0.01, deadline - time.monotonic()))
            if frame["type"] == kind:
                return frame

    def until(self, predicate: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Every frame received until one matches `predicate` (that one included)."""
        frames = []
        deadline = time.monotonic() + timeout
        while True:
            frame = self.next(max(0.01, deadline - time.monotonic()))
            frames.append(frame)
            if predicate(frame):
                return frames

    def close(self) -> None:
        self.socket.close()


def open_live(server_ws_url: str, token: str | None, last_event_id: str | None = None) -> Live:
    sock = connect(server_ws_url, open_timeout=10)
    sock.send(json.dumps({"type": "auth", "token": token, "lastEventId": last_event_id}))
    before = []
    while True:
        frame = json.loads(sock.recv(timeout=10))
        if frame["type"] == "ready":
            return Live(sock, frame, before)
        before.append(frame)
