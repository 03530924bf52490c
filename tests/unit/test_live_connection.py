"""A socket's pump on its own: order, duplicates, gaps and the slow-client bound.

The outbox is a real SQLite database; only the WebSocket is a stand-in that records frames.
"""

import asyncio
import contextlib
import json
from typing import Any

import pytest

from pesan.auth import Caller
from pesan.config import Settings
from pesan.db import Database
from pesan.live.events import Event
from pesan.live.ws import CLOSE_TOO_SLOW, Connection
from pesan.roles import Role


class RecordingSocket:
    def __init__(self, block: bool = False) -> None:
        self.frames: list[dict[str, Any]] = []
        self.closed_with: int | None = None
        self.block = block

    async def send_text(self, text: str) -> None:
        if self.block:
            await asyncio.sleep(3600)
        self.frames.append(json.loads(text))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed_with = code


def make_connection(socket: RecordingSocket, tmp_path, max_pending: int = 1000) -> Connection:
    settings = Settings(data_dir=tmp_path, ws_send_queue_max=max_pending)
    db = Database(f"sqlite:///{tmp_path / 'unused.sqlite3'}")
    caller = Caller(id="U1", name="Emma", role=Role.customer, email="e@example.com")
    return Connection(socket, caller, db, settings)  # type: ignore[arg-type]


def event(seq: int) -> Event:
    return Event("U1", seq, "message.created", {"n": seq})


async def run_briefly(connection: Connection) -> None:
    task = asyncio.create_task(connection.forward())
    await asyncio.sleep(0.05)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def test_events_offered_out_of_order_go_out_in_order_once(tmp_path):
    socket = RecordingSocket()
    connection = make_connection(socket, tmp_path)

    async def scenario() -> None:
        connection.offer([event(2), event(1)], 0.0)
        connection.offer([event(1), event(3)], 0.0)  # 1 again: a duplicate
        await run_briefly(connection)

    asyncio.run(scenario())
    assert [f["id"] for f in socket.frames] == ["000000000001", "000000000002", "000000000003"]
    assert connection.last_seq == 3


def test_a_slow_client_is_dropped_with_1013_instead_of_growing_memory(tmp_path):
    socket = RecordingSocket()
    connection = make_connection(socket, tmp_path, max_pending=5)
    connection.last_seq = 0

    async def scenario() -> None:
        # events 2..8 are waiting behind a missing 1: more than the bound of 5
        connection.offer([event(n) for n in range(2, 9)], 0.0)
        await run_briefly(connection)

    asyncio.run(scenario())
    assert socket.closed_with == CLOSE_TOO_SLOW
    assert socket.frames == []


@pytest.mark.parametrize("count", [1, 5])
def test_within_the_bound_nothing_is_dropped(tmp_path, count):
    socket = RecordingSocket()
    connection = make_connection(socket, tmp_path, max_pending=5)

    async def scenario() -> None:
        connection.offer([event(n) for n in range(1, count + 1)], 0.0)
        await run_briefly(connection)

    asyncio.run(scenario())
    assert socket.closed_with is None
    assert len(socket.frames) == count
