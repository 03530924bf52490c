"""An acknowledged write survives `kill -9` of the server: the embedded database is in WAL
mode with `synchronous=NORMAL`, and a send is answered only after its commit, whatever the
write queue and the prebuilt statements do on the way."""

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.live.conftest import Rest

pytestmark = pytest.mark.slow


def test_every_acknowledged_message_survives_a_kill(servers: Any, tmp_path: Path) -> None:
    server = servers(PESAN_DATA_DIR=str(tmp_path / "data"))
    rest = Rest(server.base)
    pairs = []
    for _ in range(4):
        customer, therapist = rest.register("customer"), rest.register("therapist")
        r = rest.http.post(
            "/conversations", headers=customer.headers, json={"participantId": therapist.id}
        )
        pairs.append((customer, r.json()["id"]))

    def send(n: int) -> str:
        customer, conversation = pairs[n % len(pairs)]
        r = rest.http.post(
            f"/conversations/{conversation}/messages",
            headers=customer.headers,
            json={"content": f"message {n}", "clientMessageId": f"kill-{n}"},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    with ThreadPoolExecutor(8) as pool:
        acknowledged = list(pool.map(send, range(200)))
    server.process.kill()  # SIGKILL: no shutdown, no checkpoint
    server.process.wait(10)

    with sqlite3.connect(tmp_path / "data" / "pesan.sqlite3") as db:
        stored = {row[0] for row in db.execute("SELECT id FROM messages")}
        gaps = db.execute(
            "SELECT e.user_id FROM user_events e JOIN user_event_counters c USING (user_id)"
            " GROUP BY e.user_id, c.last_seq HAVING count(*) != c.last_seq"
        ).fetchall()
    assert set(acknowledged) <= stored
    assert gaps == []
