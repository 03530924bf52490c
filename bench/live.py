"""Live delivery: how soon a sent message reaches the recipient's socket, and what idle
sockets cost.

1. Latency: 32 therapists each hold a socket; their customers send (wrk, paced to
   `--rate` messages a second in all). Each `message.created` frame is timed from the
   message's `createdAt` (stamped by the server as it stores the message) to its arrival on
   the socket. Every acknowledged message must arrive exactly once, with event ids
   following each other without a gap. The baseline is the bare FastAPI POST's own p99 at
   the same paced rate, measured in the same run.
2. Idle sockets: `--sockets` authenticated sockets (users and tokens bulk-inserted into the
   database) are opened and left idle; the server's resident memory before and after.
   The file-descriptor limit is raised to the hard limit for this process and the server.

    .venv/bin/python bench/live.py [--rate 500] [--sockets 10000] [--seconds 8] [--smoke]

Writes bench/results/live.json. Targets: p99 < 20 ms at 500 msg/s; 10,000 idle sockets
under 1 GiB. Fails (exit 1) on errors (5xx, a lost, repeated or out-of-order event, a
socket that did not get `ready`); never on timing.
"""

import argparse
import asyncio
import base64
import hashlib
import json
import os
import resource
import secrets
import struct
import time
from datetime import datetime, timedelta
from typing import Any

from harness import (
    Proc,
    alternate,
    baseline_targets,
    fail,
    start_baseline,
    start_pesan,
    workdir,
    write_results,
    wrk,
)
from send import CAPTURE, check_stored, errors_of, make_pairs, send_targets
from sqlalchemy import create_engine, insert

from pesan.accounts.models import AuthToken, User
from pesan.db import table_of
from pesan.ids import new_id
from pesan.live.models import UserEventCounter
from pesan.timeutil import utcnow

# ---- a minimal WebSocket client: 10,000 of the usual clients would weigh more than the server


class RawSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, token: str) -> tuple["RawSocket", dict[str, Any]]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /api/v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError(f"no upgrade: {head[:80]!r}")
        sock = cls(reader, writer)
        await sock.send({"type": "auth", "token": token, "lastEventId": None})
        ready = await sock.recv()
        if ready.get("type") != "ready":
            raise RuntimeError(f"expected ready, got {ready}")
        return sock, ready

    async def send(self, frame: dict[str, Any], opcode: int = 0x1) -> None:
        self._write(opcode, json.dumps(frame).encode())
        await self.writer.drain()

    def _write(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(head + mask + masked)

    async def recv(self) -> dict[str, Any]:
        """The next text frame, answering pings on the way."""
        while True:
            b0, b1 = await self.reader.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
            payload = await self.reader.readexactly(n)
            opcode = b0 & 0x0F
            if opcode == 0x9:  # ping
                self._write(0xA, payload)
                continue
            if opcode == 0x8:
                raise ConnectionError("closed by the server")
            if opcode == 0x1:
                return dict(json.loads(payload))

    def close(self) -> None:
        self.writer.close()


# ---- 1. latency at a paced rate ------------------------------------------------------------


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def latency(
    server: Proc, baseline: Proc, rate: float, seconds: float
) -> tuple[dict[str, Any], list[str]]:
    pairs = await asyncio.to_thread(make_pairs, server, 32)
    targets = send_targets(pairs)
    sockets = [(await RawSocket.open(server.port, t["token"]))[0] for _, t, _ in pairs]
    lags: list[float] = []
    seen: dict[str, int] = {}
    problems: list[str] = []
    received: list[str] = []

    async def follow(sock: RawSocket, who: str) -> None:
        last = None
        while True:
            frame = await sock.recv()
            if "id" not in frame:
                continue
            seq = int(frame["id"])
            if last is not None and seq != last + 1:
                problems.append(f"socket of {who}: event {seq} after {last}")
            last = seq
            if frame["type"] == "message.created":
                lags.append(time.time() - parse_time(frame["data"]["createdAt"]))
                received.append(frame["data"]["clientMessageId"])
                seen[frame["data"]["id"]] = seen.get(frame["data"]["id"], 0) + 1

    followers = [
        asyncio.create_task(follow(s, t["id"])) for s, (_, t, _) in zip(sockets, pairs, strict=True)
    ]
    delay_ms = 32 * 1000 / rate
    # Each connection waits `delay_ms` after each answer, so the rate reached falls short of
    # the rate asked by the answers' own time. A short run at the nominal pace measures that
    # time; the measured run waits that much less, so that it sends at the rate asked.
    calibration = await asyncio.to_thread(
        wrk,
        server.base,
        targets,
        connections=32,
        seconds=min(2.0, seconds),
        capture=CAPTURE,
        delay_ms=delay_ms,
    )
    answer_ms = 32 * 1000 / calibration.rate - delay_ms if calibration.rate else 0.0
    paced_ms = max(1.0, delay_ms - max(0.0, answer_ms))
    await asyncio.sleep(1.0)  # the calibration's last frames on their way
    lags.clear()  # the figures are the measured run's
    loads = await asyncio.to_thread(
        alternate,
        {
            "baseline": lambda: wrk(
                baseline.base,
                baseline_targets(32),
                connections=32,
                seconds=seconds,
                delay_ms=delay_ms,
            ),
            "pesan": lambda: wrk(
                server.base,
                targets,
                connections=32,
                seconds=seconds,
                capture=CAPTURE,
                delay_ms=paced_ms,
            ),
        },
        1,
    )
    await asyncio.sleep(1.0)  # the last frames on their way
    for task in followers:
        task.cancel()
    for sock in sockets:
        sock.close()
    sent = loads["pesan"]
    problems += errors_of("sends", sent) + errors_of("baseline", loads["baseline"])
    problems += errors_of("calibration", calibration)
    missing = set(sent.acked + calibration.acked) - set(received)
    if missing:
        problems.append(f"{len(missing)} acknowledged messages never reached the socket")
    repeated = [m for m, n in seen.items() if n > 1]
    if repeated:
        problems.append(f"{len(repeated)} messages reached a socket twice")
    lags.sort()

    def pct(p: float) -> float:
        return round(lags[min(len(lags) - 1, int(len(lags) * p))] * 1000, 2) if lags else 0.0

    figures = {
        "asked_rate": rate,
        "sent_rate": round(sent.rate, 1),
        "calibration_rate": round(calibration.rate, 1),
        "paced_delay_ms": round(paced_ms, 1),
        "delivered": len(lags),
        "send_to_socket_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99)},
        "http_send": sent.summary(),
        "baseline_post_at_same_rate": loads["baseline"].summary(),
        "ratio_p99": round(pct(0.99) / loads["baseline"].p99_ms, 2)
        if loads["baseline"].p99_ms
        else None,
    }
    return figures, problems


# ---- 2. idle sockets ---------------------------------------------------------------------


def seed_users(url: str, count: int) -> list[str]:
    """`count` customers with a token each, straight into the database: their tokens."""
    engine = create_engine(url)
    tokens = [secrets.token_urlsafe(32) for _ in range(count)]
    now = utcnow()
    users, rows, counters = [], [], []
    for i, token in enumerate(tokens):
        uid = new_id()
        users.append(
            {
                "id": uid,
                "email": f"idle-{i}-{uid.lower()}@example.com",
                "password_hash": "x",
                "name": f"Idle {i}",
                "role": "customer",
                "created_at": now,
                "updated_at": now,
            }
        )
        rows.append(
            {
                "id": new_id(),
                "user_id": uid,
                "token_hash": hashlib.sha256(token.encode()).hexdigest(),
                "created_at": now,
                "expires_at": now + timedelta(days=1),
            }
        )
        counters.append({"user_id": uid, "last_seq": 0})
    with engine.begin() as conn:
        conn.execute(insert(table_of(User)), users)
        conn.execute(insert(table_of(AuthToken)), rows)
        conn.execute(insert(table_of(UserEventCounter)), counters)
    engine.dispose()
    return tokens


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def idle_sockets(server: Proc, tokens: list[str]) -> tuple[dict[str, Any], list[str]]:
    before = rss_mib(server.process.pid)
    gate = asyncio.Semaphore(200)
    problems: list[str] = []

    async def one(token: str) -> RawSocket | None:
        async with gate:
            try:
                return (await RawSocket.open(server.port, token))[0]
            except Exception as exc:
                problems.append(f"socket: {exc!r}")
                return None

    started = time.monotonic()
    sockets = await asyncio.gather(*(one(t) for t in tokens))
    opened = time.monotonic() - started
    await asyncio.sleep(2.0)
    after = rss_mib(server.process.pid)
    held = [s for s in sockets if s is not None]
    for sock in held:
        sock.close()
    if len(held) != len(tokens):
        problems = [*problems[:3], f"{len(tokens) - len(held)} of {len(tokens)} sockets failed"]
    return {
        "sockets": len(held),
        "seconds_to_open": round(opened, 1),
        "server_rss_mib_before": round(before, 1),
        "server_rss_mib_with_sockets": round(after, 1),
        "kib_per_socket": round((after - before) * 1024 / max(1, len(held)), 1),
    }, problems


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def run(rate: float, sockets: int, seconds: float, smoke: bool) -> None:
    limit = raise_fd_limit()  # inherited by the server started below
    result: dict[str, Any] = {"smoke": smoke, "fd_limit": limit}
    problems: list[str] = []
    with workdir() as tmp:
        url = f"sqlite:///{tmp / 'data' / 'pesan.sqlite3'}"
        baseline = start_baseline(tmp)
        server = start_pesan(tmp)
        try:
            result["latency"], found = await latency(server, baseline, rate, seconds)
            problems += found
            tokens = await asyncio.to_thread(seed_users, url, sockets)
            result["idle"], found = await idle_sockets(server, tokens)
            problems += found
        finally:
            server.stop()
            baseline.stop()
        problems += await asyncio.to_thread(check_stored, url, [])
    result["targets"] = {"p99_ms_below_at_500": 20, "idle_10000_mib_below": 1024}
    write_results("live" + ("-smoke" if smoke else ""), result)
    fail(problems)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--smoke", action="store_true", help="short; fails on errors only")
    args = parser.parse_args()
    if args.smoke:
        asyncio.run(run(rate=50, sockets=200, seconds=1, smoke=True))
    else:
        asyncio.run(run(args.rate, args.sockets, args.seconds, smoke=False))


if __name__ == "__main__":
    main()
