"""Reads stay flat as the database grows: the newest page of a conversation and the
conversation list, at a small and at a large number of messages, on one server, in one run.

A viewer has 20 conversations (with 5 unread messages each); the messages are bulk
inserted straight into the database, first up to `--small`, then up to `--large`. At each
size wrk reads, over HTTP with one connection, the newest page (`before=` the last message,
limit 50, as a chat screen opens) and the conversation list; the figures are latencies
(p50, p99) and their ratio large/small.

    .venv/bin/python bench/reads.py [--small 10000] [--large 1000000] [--db sqlite|postgresql]

Writes bench/results/reads-<db>.json. Targets: each under 5 ms (p50) and ratio near 1.
Fails (exit 1) on any answer but 200; never on timing.
"""

import argparse
import time
from datetime import timedelta
from typing import Any

from harness import (
    Api,
    Load,
    Target,
    auth,
    fail,
    pesan_upgrade,
    pg_database,
    start_pesan,
    workdir,
    write_results,
    wrk,
)
from sqlalchemy import create_engine, func, select, text, update

from pesan.chat.models import Conversation, Message
from pesan.db import table_of
from pesan.ids import new_id
from pesan.timeutil import utcnow

CONVERSATIONS = 20
UNREAD = 5
CHUNK = 20_000


def seed(
    url: str, viewer: dict[str, Any], others: list[dict[str, Any]], convs: list[str], upto: int
) -> float:
    """Bulk-insert messages until the database holds `upto`; the newest UNREAD of each
    conversation are to the viewer and unread, the rest read. Returns seconds taken."""
    started = time.monotonic()
    engine = create_engine(url)
    messages = table_of(Message)
    with engine.begin() as conn:
        have = int(conn.execute(select(func.count()).select_from(messages)).scalar_one())
        conn.execute(messages.update().values(read=True))
    need = max(0, upto - have)
    per = need // len(convs)
    base = utcnow() - timedelta(days=30)
    for n, (conversation_id, other) in enumerate(zip(convs, others, strict=True)):
        rows = []
        for i in range(per):
            to_viewer = i % 2 == 0 or i >= per - UNREAD
            rows.append(
                {
                    "id": new_id(),
                    "conversation_id": conversation_id,
                    "sender_id": other["id"] if to_viewer else viewer["id"],
                    "sender_name": "Therapist" if to_viewer else "Customer",
                    "sender_type": "therapist" if to_viewer else "customer",
                    "recipient_id": viewer["id"] if to_viewer else other["id"],
                    "recipient_name": "Customer" if to_viewer else "Therapist",
                    "recipient_type": "customer" if to_viewer else "therapist",
                    "content": f"seeded message {i}",
                    "message_type": "text",
                    "original_language": "id",
                    "is_system_message": False,
                    "read": i < per - UNREAD,
                    "created_at": base + timedelta(seconds=n * 1000 + i / 1000),
                }
            )
        with engine.begin() as conn:
            for start in range(0, len(rows), CHUNK):
                conn.execute(messages.insert(), rows[start : start + CHUNK])
            if rows:
                conn.execute(
                    update(table_of(Conversation))
                    .where(table_of(Conversation).c.id == conversation_id)
                    .values(last_message_id=rows[-1]["id"], updated_at=utcnow())
                )
    with engine.begin() as conn:  # the counters pesan keeps as it stores messages
        conn.execute(
            text(
                "UPDATE conversation_participants SET unread_count = ("
                " SELECT count(*) FROM messages m"
                " WHERE m.conversation_id = conversation_participants.conversation_id"
                " AND m.recipient_id = conversation_participants.user_id AND NOT m.read)"
            )
        )
    engine.dispose()
    return time.monotonic() - started


def newest_ids(url: str, convs: list[str]) -> list[str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(table_of(Conversation).c.last_message_id).where(
                table_of(Conversation).c.id.in_(convs)
            )
        ).all()
    engine.dispose()
    return [r[0] for r in rows]


def measure(
    base: str, viewer: dict[str, Any], url: str, convs: list[str], seconds: float
) -> dict[str, Load]:
    headers = auth(viewer["token"])
    pages = [
        Target(
            path=f"/api/v1/conversations/{c}/messages?limit=50&before={last}",
            headers=headers,
            method="GET",
        )
        for c, last in zip(convs, newest_ids(url, convs), strict=True)
    ]
    listing = [Target(path="/api/v1/conversations?limit=50", headers=headers, method="GET")]
    wrk(base, pages + listing, connections=1, seconds=1)  # warm up
    return {
        "newest_page": wrk(base, pages, connections=1, seconds=seconds),
        "conversation_list": wrk(base, listing, connections=1, seconds=seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--smoke", action="store_true", help="1,000 and 10,000; errors only")
    args = parser.parse_args()
    small, large = (1_000, 10_000) if args.smoke else (args.small, args.large)
    seconds = 1 if args.smoke else args.seconds
    problems: list[str] = []
    result: dict[str, Any] = {"database": args.db, "smoke": args.smoke, "sizes": [small, large]}
    with workdir() as tmp:
        if args.db == "postgresql":
            context = pg_database()
            url = context.__enter__()
            pesan_upgrade(url)
            server = start_pesan(tmp, database_url=url)
        else:
            context = None
            url = f"sqlite:///{tmp / 'data' / 'pesan.sqlite3'}"
            server = start_pesan(tmp)
        try:
            api = Api(server.base)
            viewer = api.register("customer", "Customer")
            others = [api.register("therapist", "Therapist") for _ in range(CONVERSATIONS)]
            convs = [api.conversation(viewer, other) for other in others]
            figures: dict[int, dict[str, Load]] = {}
            for size in (small, large):
                result[f"seed_seconds_{size}"] = round(seed(url, viewer, others, convs, size), 1)
                figures[size] = measure(server.base, viewer, url, convs, seconds)
        finally:
            server.stop()
            if context is not None:
                context.__exit__(None, None, None)
    for what in ("newest_page", "conversation_list"):
        at_small, at_large = figures[small][what], figures[large][what]
        for size, load in ((small, at_small), (large, at_large)):
            bad = {c: n for c, n in load.codes.items() if c != 200}
            if bad or load.ok == 0 or load.socket_errors:
                problems.append(f"{what} at {size}: {bad or 'nothing answered'}")
        result[what] = {
            str(small): at_small.summary(),
            str(large): at_large.summary(),
            "ratio_p50": round(at_large.p50_ms / at_small.p50_ms, 2) if at_small.p50_ms else None,
        }
    result["targets"] = {"p50_ms_below": 5, "ratio_near": 1}
    write_results(f"reads-{args.db}" + ("-smoke" if args.smoke else ""), result)
    fail(problems)


if __name__ == "__main__":
    main()
