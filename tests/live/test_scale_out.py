"""Two server processes on PostgreSQL and Redis: a message sent through A reaches a socket
held by B; with Redis stopped, sends still succeed and B's socket catches up once it is back."""

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import IN_CI
from tests.live.conftest import OPERATOR, Rest, free_port, open_live

pytestmark = pytest.mark.slow


class OwnRedis:
    """A Redis server of the test's own, on its own port, started and stopped by the test."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if IN_CI:
                pytest.fail("redis-server is required in CI")
            pytest.skip("redis-server not installed")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.tmp),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_timeout=0.5).ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("own redis did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def _upgrade(url: str) -> None:
    env = {"PESAN_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "pesan", "db", "upgrade"], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()


def _wait_ready(base: str, expect: int, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        r = httpx.get(f"{base}/readyz", headers=OPERATOR, timeout=5)
        body = r.json()
        if r.status_code == expect:
            return body
        time.sleep(0.2)
    raise AssertionError(f"/readyz never answered {expect}: {body}")


def test_two_processes_share_live_events_and_survive_a_redis_outage(
    servers, own_redis, database_url_factory
):
    url = database_url_factory("postgresql")
    _upgrade(url)
    env = {"PESAN_DATABASE_URL": url, "PESAN_REDIS_URL": own_redis.url}
    a, b = servers(**env), servers(**env)
    _wait_ready(a.base, 200)
    _wait_ready(b.base, 200)
    rest_a = Rest(a.base)
    customer, therapist = rest_a.register("customer"), rest_a.provider()
    conversation_id = rest_a.book(customer, therapist)["conversation"]["id"]

    on_b = open_live(b.ws_url, customer.token)
    sent = rest_a.send(therapist, conversation_id, "Saya sudah di jalan")
    frame = on_b.next_of("message.created")
    assert frame["data"]["id"] == sent["id"]

    own_redis.stop()
    body = _wait_ready(a.base, 503)
    assert body["checks"]["broker"]["ok"] is False
    during = [
        rest_a.send(therapist, conversation_id, f"saat redis mati {i}")["id"] for i in range(3)
    ]

    own_redis.start()
    _wait_ready(a.base, 200)
    _wait_ready(b.base, 200)
    frames = on_b.until(
        lambda f: f["type"] == "message.created" and f["data"]["id"] == during[-1], timeout=30
    )
    received = [f["data"]["id"] for f in frames if f["type"] == "message.created"]
    assert received == during
    ids = [f["id"] for f in frames]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    on_b.close()
