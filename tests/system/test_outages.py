"""Fault injection against a real `pesan serve`: the database refusing connections, a lock held
past the time limit, a full disk, Redis gone. Each answer is a 503 problem+json with
Retry-After (never a 500 or a hang), /healthz keeps answering at once, and pesan recovers
by itself once the fault is gone. Every wait here is bounded."""

import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.system.conftest import OPERATOR, pesan_env, run_pesan
from tests.system.faults import TcpProxy, small_disk

pytestmark = pytest.mark.slow

FAST_TIMEOUTS = {
    "PESAN_DB_LOCK_TIMEOUT_SECONDS": "1",
    "PESAN_DB_STATEMENT_TIMEOUT_SECONDS": "3",
    "PESAN_DB_CONNECT_TIMEOUT_SECONDS": "2",
    "PESAN_DB_POOL_TIMEOUT_SECONDS": "2",
}


def register(base: str, role: str = "customer") -> dict[str, Any]:
    r = httpx.post(
        f"{base}/api/v1/auth/register",
        json={
            "email": f"{role}-{time.monotonic_ns()}@example.com",
            "password": "correct horse",
            "name": role.title(),
            "role": role,
        },
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def assert_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "service_unavailable"
    assert int(r.headers["retry-after"]) >= 1


def until(check: Callable[[], bool], deadline: float, what: str) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.2)
    pytest.fail(f"not within {deadline}s: {what}")


@pytest.fixture
def pg_url(database_url_factory: Any, tmp_path: Path) -> str:
    url = str(database_url_factory("postgresql"))
    done = run_pesan("db", "upgrade", env=pesan_env(database_url=url), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return url


def through(proxy: TcpProxy, url: str) -> str:
    """The same database, reached through the proxy's port."""
    host_port = url.split("@", 1)[1].split("/", 1)[0]
    return url.replace(f"@{host_port}/", f"@127.0.0.1:{proxy.port}/")


def test_postgresql_refusing_connections_is_503_and_recovers_without_restart(
    pg_url: str, tmp_path: Path, start_server: Any
) -> None:
    target = pg_url.split("@", 1)[1].split("/", 1)[0].split(":")
    proxy = TcpProxy((target[0], int(target[1]) if len(target) > 1 else 5432))
    try:
        env = {**pesan_env(database_url=through(proxy, pg_url)), **FAST_TIMEOUTS}
        server = start_server(env, tmp_path)
        server.wait_ready()
        customer = register(server.url)
        me = f"{server.url}/api/v1/me"
        headers = {"Authorization": f"Bearer {customer['token']}"}
        assert httpx.get(me, headers=headers, timeout=10).status_code == 200

        proxy.cut()
        started = time.monotonic()
        r = httpx.get(me, headers=headers, timeout=10)
        assert time.monotonic() - started < 5
        assert_unavailable(r)
        assert httpx.get(f"{server.url}/readyz", timeout=10).json() == {"status": "unavailable"}
        # A socket gets a close code to act on (try again later), not a dropped connection.
        with connect(f"ws://127.0.0.1:{server.port}/api/v1/ws", open_timeout=10) as ws:
            ws.send(json.dumps({"type": "auth", "token": customer["token"]}))
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013

        proxy.restore()
        until(
            lambda: httpx.get(me, headers=headers, timeout=10).status_code == 200,
            20,
            "requests succeed again once PostgreSQL answers",
        )
        server.wait_ready()
        # And a socket that was told to try again later now resumes.
        with connect(f"ws://127.0.0.1:{server.port}/api/v1/ws", open_timeout=10) as ws:
            ws.send(json.dumps({"type": "auth", "token": customer["token"], "lastEventId": "0"}))
            frames = [json.loads(ws.recv(timeout=10))]
            while frames[-1]["type"] != "ready":
                frames.append(json.loads(ws.recv(timeout=10)))
        assert frames[-1]["type"] == "ready"
    finally:
        proxy.cut()
    server.stop()
    assert "database unavailable on GET /api/v1/me" in server.log
    assert "Traceback" not in server.log


@contextmanager
def pg_lock_held(url: str, table: str) -> Iterator[None]:
    with closing(psycopg.connect(url)) as conn:
        conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
        conn.rollback()


@contextmanager
def sqlite_lock_held(path: Path) -> Iterator[None]:
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None, timeout=1)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_a_lock_held_past_the_timeout_is_503_while_healthz_answers_at_once(
    backend_name: str, database_url_factory: Any, tmp_path: Path, start_server: Any
) -> None:
    if backend_name == "postgresql":
        url = str(database_url_factory("postgresql"))
        env = {**pesan_env(database_url=url), **FAST_TIMEOUTS}
        assert run_pesan("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
        held = pg_lock_held(url, "users")
    else:
        data = tmp_path / "data"
        env = {**pesan_env(data_dir=data), **FAST_TIMEOUTS}
        held = None
    server = start_server(env, tmp_path)
    server.wait_ready()
    customer = register(server.url)
    if held is None:
        held = sqlite_lock_held(tmp_path / "data" / "pesan.sqlite3")

    def blocked_request(i: int) -> httpx.Response:
        if backend_name == "postgresql":  # every read of users waits for the lock
            headers = {"Authorization": f"Bearer {customer['token']}"}
            return httpx.get(f"{server.url}/api/v1/me", headers=headers, timeout=30)
        return httpx.post(  # every write waits for SQLite's one writer
            f"{server.url}/api/v1/auth/register",
            json={
                "email": f"waiting{i}@example.com",
                "password": "long enough",
                "name": "W",
                "role": "customer",
            },
            timeout=30,
        )

    with held, ThreadPoolExecutor(max_workers=60) as pool:
        started = time.monotonic()
        # More waiting requests than the server has threads: /healthz must not queue behind.
        waiting = [pool.submit(blocked_request, i) for i in range(60)]
        time.sleep(0.3)
        latencies = []
        with httpx.Client(base_url=server.url, timeout=5) as probe:  # as a load balancer does
            for _ in range(7):
                t = time.perf_counter()
                assert probe.get("/healthz").status_code == 200
                latencies.append(time.perf_counter() - t)
                time.sleep(0.05)
        answers = [f.result(timeout=60) for f in waiting]
        elapsed = time.monotonic() - started
    assert statistics.median(latencies) < 0.1, latencies
    assert max(latencies) < 1.0, latencies
    for r in answers:
        assert_unavailable(r)
    assert elapsed < 30  # 60 requests, each bounded by the lock and pool timeouts
    # The lock is gone: the same request works again at once.
    assert blocked_request(999).status_code in (200, 201)


def test_sqlite_disk_full_is_not_ready_and_recovers(tmp_path: Path, start_server: Any) -> None:
    with small_disk() as disk:
        env = {**pesan_env(data_dir=disk.path / "data"), **FAST_TIMEOUTS}
        server = start_server(env, tmp_path)
        server.wait_ready()
        customer = register(server.url)
        therapist = register(server.url, "therapist")
        headers = {"Authorization": f"Bearer {customer['token']}"}
        r = httpx.post(
            f"{server.url}/api/v1/conversations",
            headers=headers,
            json={"participantId": therapist["user"]["id"]},
            timeout=10,
        )
        conversation = r.json()["id"]
        messages = f"{server.url}/api/v1/conversations/{conversation}/messages"

        disk.fill()
        refused = None
        for i in range(300):  # until the WAL has no room left to reuse
            r = httpx.post(messages, headers=headers, json={"content": f"{i} " + "x" * 3900})
            if r.status_code != 201:
                refused = r
                break
        assert refused is not None, "writes never failed on a full disk"
        assert_unavailable(refused)
        ready = httpx.get(f"{server.url}/readyz", headers=OPERATOR, timeout=10)
        assert ready.status_code == 503
        write = ready.json()["checks"]["write"]
        assert write["ok"] is False and "free disk space" in write["fix"]
        public = httpx.get(f"{server.url}/readyz", timeout=10)
        assert public.json() == {"status": "unavailable"}

        disk.empty()
        server.wait_ready()
        r = httpx.post(messages, headers=headers, json={"content": "room again"}, timeout=10)
        assert r.status_code == 201, r.text
        server.stop()


def test_redis_down_sends_still_succeed_with_throttling_on(
    database_url_factory: Any, tmp_path: Path, start_server: Any
) -> None:
    from tests.live.test_scale_out import OwnRedis

    own = OwnRedis(tmp_path)
    own.start()
    try:
        url = str(database_url_factory("postgresql"))
        env = {
            **pesan_env(database_url=url),
            "PESAN_REDIS_URL": own.url,
            "PESAN_LIMITS_ENABLED": "true",
        }
        assert run_pesan("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
        server = start_server(env, tmp_path)
        server.wait_ready()
        customer, therapist = register(server.url), register(server.url, "therapist")
        headers = {"Authorization": f"Bearer {customer['token']}"}
        r = httpx.post(
            f"{server.url}/api/v1/conversations",
            headers=headers,
            json={"participantId": therapist["user"]["id"]},
            timeout=10,
        )
        messages = f"{server.url}/api/v1/conversations/{r.json()['id']}/messages"
        assert httpx.post(messages, headers=headers, json={"content": "before"}).status_code == 201

        own.stop()
        for i in range(5):
            r = httpx.post(messages, headers=headers, json={"content": f"during {i}"}, timeout=10)
            assert r.status_code == 201, r.text
        signed_in = httpx.post(
            f"{server.url}/api/v1/auth/login",
            json={"email": customer["user"]["email"], "password": "correct horse"},
            timeout=10,
        )
        assert signed_in.status_code == 200  # the throttle's store is away: not enforced
    finally:
        own.stop()


def test_every_server_process_closes_signed_out_sockets_and_shares_limits(
    database_url_factory: Any, tmp_path: Path, start_server: Any
) -> None:
    from tests.live.test_scale_out import OwnRedis

    own = OwnRedis(tmp_path)
    own.start()
    try:
        url = str(database_url_factory("postgresql"))
        env = {
            **pesan_env(database_url=url),
            "PESAN_REDIS_URL": own.url,
            "PESAN_LIMITS_ENABLED": "true",
            "PESAN_LIMIT_LOGIN_ACCOUNT": "2/minute",
        }
        assert run_pesan("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
        a, b = start_server(env, tmp_path), start_server(env, tmp_path)
        a.wait_ready()
        b.wait_ready()
        customer = register(a.url)
        closed_codes: list[int] = []

        def hold_socket() -> None:
            with connect(f"ws://127.0.0.1:{b.port}/api/v1/ws", open_timeout=10) as ws:
                ws.send(json.dumps({"type": "auth", "token": customer["token"]}))
                assert json.loads(ws.recv(timeout=10))["type"] == "ready"
                ready.set()
                try:
                    while True:
                        ws.recv(timeout=15)
                except ConnectionClosed as exc:
                    closed_codes.append(exc.rcvd.code if exc.rcvd else -1)

        ready = threading.Event()
        holder = threading.Thread(target=hold_socket, daemon=True)
        holder.start()
        assert ready.wait(15)
        headers = {"Authorization": f"Bearer {customer['token']}"}
        assert httpx.post(f"{a.url}/api/v1/auth/logout", headers=headers).status_code == 204
        holder.join(15)
        assert closed_codes == [4401]

        # Limits are counted in Redis: both processes together, not each on its own.
        attempts = [
            httpx.post(
                f"{server.url}/api/v1/auth/login",
                json={"email": customer["user"]["email"], "password": "wrong guess"},
                timeout=10,
            ).status_code
            for server in (a, b, a)
        ]
        assert attempts == [401, 401, 429]
    finally:
        own.stop()
