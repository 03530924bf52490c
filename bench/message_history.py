"""Message history paging stays flat as a conversation grows.

Measures the time to read one page (limit 50) deep into a conversation's history through the
same service function the API uses, at a small and at a large history, in one run, and
prints the ratio large/small. Keyset paging on the (conversation_id, id) index keeps the
ratio near 1; OFFSET paging would grow with the history.

    .venv/bin/python bench/message_history.py [--small 1000] [--large 100000] [--db URL]

Writes bench/results/message_history.json. Target: ratio below 3.
"""

import argparse
import json
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert

from pesan import migrate
from pesan.accounts.models import User
from pesan.auth import Caller
from pesan.chat import service as chat
from pesan.chat.models import Conversation, Message, Participant
from pesan.db import Database
from pesan.ids import new_id
from pesan.roles import Role
from pesan.timeutil import utcnow

RESULTS = Path(__file__).parent / "results"


def fill(db: Database, count: int) -> tuple[Caller, str, list[str]]:
    customer_id, provider_id = new_id(), new_id()
    conversation_id = new_id()
    now = utcnow()
    with db.transaction() as session:
        for uid, role in ((customer_id, "customer"), (provider_id, "therapist")):
            session.add(
                User(id=uid, email=f"{uid}@example.com", password_hash="x", name=role, role=role)
            )
        session.flush()
        session.add(Conversation(id=conversation_id, pair_key=f"{customer_id}:{provider_id}"))
        session.flush()
        session.add_all(
            [
                Participant(conversation_id=conversation_id, user_id=u)
                for u in (customer_id, provider_id)
            ]
        )
    ids = [new_id() for _ in range(count)]
    rows = [
        {
            "id": mid,
            "conversation_id": conversation_id,
            "sender_id": customer_id,
            "sender_name": "customer",
            "sender_type": "customer",
            "recipient_id": provider_id,
            "recipient_name": "therapist",
            "recipient_type": "therapist",
            "content": f"message {i}",
            "message_type": "text",
            "original_language": "id",
            "is_system_message": False,
            "read": False,
            "created_at": now + timedelta(milliseconds=i),
        }
        for i, mid in enumerate(ids)
    ]
    with db.transaction() as session:
        for start in range(0, len(rows), 5000):
            session.execute(insert(Message), rows[start : start + 5000])
    caller = Caller(id=customer_id, name="customer", role=Role.customer, email="")
    return caller, conversation_id, ids


def time_pages(
    db: Database, caller: Caller, conversation_id: str, ids: list[str], reps: int
) -> float:
    anchor_after = ids[int(len(ids) * 0.9)]
    anchor_before = ids[int(len(ids) * 0.5)]
    samples = []
    for _ in range(reps):
        started = time.perf_counter()
        with db.reader() as session:
            chat.list_messages(
                session, caller, conversation_id, after=anchor_after, before=None, limit=50
            )
            chat.list_messages(
                session, caller, conversation_id, after=None, before=anchor_before, limit=50
            )
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--db", default=None, help="SQLAlchemy URL of an EMPTY database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{tmp}/bench.sqlite3"
        db = Database(url)
        migrate.upgrade(db.engine)
        small = fill(db, args.small)
        large = fill(db, args.large)
        t_small = time_pages(db, *small, args.reps)
        t_large = time_pages(db, *large, args.reps)
        db.dispose()
    result = {
        "database": url.split(":", 1)[0],
        "small_history": args.small,
        "large_history": args.large,
        "small_ms": round(t_small * 1000, 3),
        "large_ms": round(t_large * 1000, 3),
        "ratio": round(t_large / t_small, 2),
        "target_ratio_below": 3,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "message_history.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
