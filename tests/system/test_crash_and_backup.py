"""Durability as an operator sees it, on both databases: `kill -9` under concurrent sends and
Book Now loses nothing that was acknowledged and leaves no orphans; a backup taken while the
server writes restores into an empty database with every message and booking."""

import os
import signal
import sqlite3
import threading
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.system.conftest import pesan_env, run_pesan

pytestmark = pytest.mark.slow

LOAD_SECONDS = 15.0  # at most; the kill comes once enough was acknowledged
ENOUGH_MESSAGES, ENOUGH_BOOKINGS = 20, 3
ORPHANS = {
    "booking without its booking message": """
        SELECT b.id FROM bookings b WHERE NOT EXISTS (
            SELECT 1 FROM messages m WHERE m.booking_id = b.id AND m.message_type = 'booking')""",
    "booking without its admin notification": """
        SELECT b.id FROM bookings b WHERE NOT EXISTS (
            SELECT 1 FROM admin_messages a WHERE a.booking_id = b.id)""",
    "conversation without both parties": """
        SELECT c.id FROM conversations c WHERE (
            SELECT count(*) FROM conversation_participants p
            WHERE p.conversation_id = c.id) <> 2""",
    "message of a missing booking": """
        SELECT m.id FROM messages m WHERE m.booking_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM bookings b WHERE b.id = m.booking_id)""",
    "idempotency key of a missing booking": """
        SELECT k.key FROM idempotency_keys k WHERE NOT EXISTS (
            SELECT 1 FROM bookings b WHERE b.id = k.booking_id)""",
}


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(url.split("///", 1)[1])) as conn:
            return list(conn.execute(sql).fetchall())
    with psycopg.connect(url) as conn:
        return list(conn.execute(sql).fetchall())  # type: ignore[arg-type]


def orphans(url: str) -> dict[str, list[Any]]:
    found = {what: query(url, sql) for what, sql in ORPHANS.items()}
    return {what: rows for what, rows in found.items() if rows}


def ids_in(url: str, table: str) -> set[str]:
    return {row[0] for row in query(url, f"SELECT id FROM {table}")}


@dataclass
class Marketplace:
    base: str
    pairs: list[tuple[dict[str, str], dict[str, Any], str]] = field(default_factory=list)
    messages: set[str] = field(default_factory=set)  # acknowledged (201)
    bookings: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, path: str, headers: dict[str, str], body: Any) -> httpx.Response:
        return httpx.post(f"{self.base}/api/v1{path}", headers=headers, json=body, timeout=10)

    def account(self, role: str, n: int) -> dict[str, Any]:
        r = self.post(
            "/auth/register",
            {},
            {
                "email": f"{role}{n}-{time.monotonic_ns()}@example.com",
                "password": "correct horse",
                "name": f"{role} {n}",
                "role": role,
            },
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    def setup(self, pairs: int) -> None:
        for n in range(pairs):
            customer, therapist = self.account("customer", n), self.account("therapist", n)
            h = {"Authorization": f"Bearer {therapist['token']}"}
            r = self.post("/providers/me/services", h, {
                "name": "Massage", "durationMinutes": 60, "price": {"amount": 150000},
            })  # fmt: skip
            assert r.status_code == 201, r.text
            service = r.json()["id"]
            c = {"Authorization": f"Bearer {customer['token']}"}
            r = self.post("/conversations", c, {"participantId": therapist["user"]["id"]})
            assert r.status_code == 200, r.text
            conversation = r.json()["id"]
            r = httpx.get(
                f"{self.base}/api/v1/providers/{therapist['user']['id']}/availability",
                params={"serviceId": service},
                timeout=10,
            )
            assert r.status_code == 200, r.text
            # Every sixth free start: 90 minutes apart, clear of a 60-minute booking's buffer.
            starts = [slot["startAt"] for slot in r.json()["items"]][::6]
            assert len(starts) > 20, r.text
            provider = {"id": therapist["user"]["id"], "service": service, "starts": starts}
            self.pairs.append((c, provider, conversation))

    def wait_for(self, *, messages: int, bookings: int) -> None:
        """Until this much was acknowledged (or LOAD_SECONDS passed: the test then says so)."""
        deadline = time.monotonic() + LOAD_SECONDS
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= messages and len(self.bookings) >= bookings:
                    return
            time.sleep(0.05)

    def load(self, pair: int, stop: threading.Event) -> None:
        """Send and book in turn until stopped or the server is gone."""
        headers, provider, conversation = self.pairs[pair]
        starts = list(provider["starts"])
        i = 0
        while not stop.is_set():
            i += 1
            try:
                if i % 3:
                    r = self.post(
                        f"/conversations/{conversation}/messages",
                        headers,
                        {"content": f"pesan {pair}-{i}", "clientMessageId": f"{pair}-{i}"},
                    )
                    if r.status_code == 201:
                        with self.lock:
                            self.messages.add(r.json()["id"])
                elif starts:
                    r = httpx.post(
                        f"{self.base}/api/v1/bookings",
                        headers={**headers, "Idempotency-Key": f"{pair}-{i}"},
                        json={
                            "providerId": provider["id"],
                            "serviceId": provider["service"],
                            "mode": "scheduled",
                            "startAt": starts.pop(0),
                            "location": {"kind": "home", "address": "Jl. Raya Ubud 1"},
                        },
                        timeout=10,
                    )
                    if r.status_code == 201:
                        body = r.json()
                        with self.lock:
                            self.bookings.add(body["booking"]["id"])
                            self.messages.add(body["message"]["id"])
            except httpx.HTTPError:
                return  # the server is gone: what it acknowledged is what counts


def database_for(backend: str, database_url_factory: Any, tmp_path: Path, name: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / name / 'pesan.sqlite3'}"
    return str(database_url_factory("postgresql"))


def serve(start_server: Any, url: str, tmp_path: Path) -> Any:
    env = {**pesan_env(database_url=url), "PESAN_LOG_LEVEL": "WARNING"}
    if not url.startswith("sqlite"):
        assert run_pesan("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    else:
        Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    server = start_server(env, tmp_path)
    server.wait_ready()
    return server


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kill_9_under_load_loses_nothing_acknowledged(
    backend: str, database_url_factory: Any, tmp_path: Path, start_server: Any
) -> None:
    url = database_for(backend, database_url_factory, tmp_path, "crash")
    server = serve(start_server, url, tmp_path)
    market = Marketplace(server.url)
    market.setup(pairs=4)
    stop = threading.Event()
    workers = [
        threading.Thread(target=market.load, args=(pair, stop), daemon=True) for pair in range(4)
    ]
    for worker in workers:
        worker.start()
    market.wait_for(messages=ENOUGH_MESSAGES, bookings=ENOUGH_BOOKINGS)
    os.kill(server.process.pid, signal.SIGKILL)  # mid-request, no shutdown of any kind
    server.process.wait(10)
    stop.set()
    for worker in workers:
        worker.join(15)
    assert len(market.messages) >= ENOUGH_MESSAGES, "the load never got going"
    assert len(market.bookings) >= ENOUGH_BOOKINGS, "the load never got going"

    restarted = serve(start_server, url, tmp_path)
    assert market.messages <= ids_in(url, "messages")
    assert market.bookings <= ids_in(url, "bookings")
    assert orphans(url) == {}
    # And the restarted server answers over them.
    headers, _, conversation = market.pairs[0]
    r = httpx.get(
        f"{restarted.url}/api/v1/conversations/{conversation}/messages?limit=200",
        headers=headers,
        timeout=10,
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_backup_taken_while_serving_restores_every_message_and_booking(
    backend: str, database_url_factory: Any, tmp_path: Path, start_server: Any
) -> None:
    url = database_for(backend, database_url_factory, tmp_path, "live")
    server = serve(start_server, url, tmp_path)
    market = Marketplace(server.url)
    market.setup(pairs=2)
    stop = threading.Event()
    writer = threading.Thread(target=market.load, args=(1, stop), daemon=True)
    # Some history first, then a backup while pair 1 keeps writing.
    first = threading.Thread(target=market.load, args=(0, stop), daemon=True)
    first.start()
    market.wait_for(messages=5, bookings=1)
    writer.start()
    time.sleep(0.3)
    with market.lock:
        acknowledged = (set(market.messages), set(market.bookings))
    backup_file = tmp_path / "backup" / "pesan.backup"
    made = run_pesan(
        "db", "backup", str(backup_file), env=pesan_env(database_url=url), cwd=tmp_path
    )
    stop.set()
    first.join(15)
    writer.join(15)
    assert made.returncode == 0, made.stderr
    assert "backup written" in made.stdout
    assert acknowledged[0] and acknowledged[1]

    again = run_pesan(
        "db", "backup", str(backup_file), env=pesan_env(database_url=url), cwd=tmp_path
    )
    assert again.returncode == 1 and "never overwrite" in again.stderr

    restored_url = database_for(backend, database_url_factory, tmp_path, "restored")
    env = pesan_env(database_url=restored_url)
    Path(tmp_path / "restored").mkdir(exist_ok=True)
    done = run_pesan("db", "restore", str(backup_file), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "restored" in done.stdout
    assert acknowledged[0] <= ids_in(restored_url, "messages")
    assert acknowledged[1] <= ids_in(restored_url, "bookings")
    assert orphans(restored_url) == {}
    assert run_pesan("db", "check", env=env, cwd=tmp_path).returncode == 0

    # Never over live data: a second restore into the now full database is refused.
    refused = run_pesan("db", "restore", str(backup_file), env=env, cwd=tmp_path)
    assert refused.returncode == 1 and "not empty" in refused.stderr

    # A server on the restored database serves the history.
    restored = serve(start_server, restored_url, tmp_path)
    headers, _, conversation = market.pairs[0]
    r = httpx.get(
        f"{restored.url}/api/v1/conversations/{conversation}/messages?limit=200",
        headers=headers,
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.json()["items"]
