"""Chat send under load: pesan against a bare FastAPI POST, in one run.

32 customers each talk to their own therapist (32 conversations); wrk sends messages with a
unique clientMessageId each, spread over the conversations, at 32 connections and at 1, then
at half the peak rate for the tail. The same load hits the baseline (bench/baseline_app.py).
Afterwards every acknowledged message is looked up in the database: stored exactly once, with
its events numbered 1, 2, 3... per user without a gap. Any 5xx, lost or duplicated message
fails the run (exit 1); timing never does.

    .venv/bin/python bench/send.py [--db sqlite|postgresql] [--workers 2] [--seconds 8] [--smoke]

`--db postgresql` runs on a fresh database on PESAN_TEST_PG (default the local server) and
also measures two processes with Redis against one. Writes bench/results/send-<db>.json.
Targets: ratio at 32 connections >= 0.25 (SQLite) / 0.15 (PostgreSQL); rate at 32 >= rate
at 1; p99 at half the peak rate < 100 ms; two processes >= 1.6 x one (PostgreSQL).
"""

import argparse
from pathlib import Path
from typing import Any

from harness import (
    REDIS_URL,
    Api,
    Load,
    Proc,
    Target,
    alternate,
    auth,
    baseline_targets,
    fail,
    pesan_upgrade,
    pg_database,
    start_baseline,
    start_pesan,
    workdir,
    write_results,
    wrk,
)
from sqlalchemy import create_engine, text

CAPTURE = '"clientMessageId":"([^"]*)"'


def make_pairs(server: Proc, count: int) -> list[tuple[dict[str, Any], dict[str, Any], str]]:
    """`count` customers, each with a therapist of their own: (customer, therapist, conv)."""
    api = Api(server.base)
    pairs = []
    for _ in range(count):
        customer = api.register("customer")
        therapist = api.register("therapist")
        pairs.append((customer, therapist, api.conversation(customer, therapist)))
    return pairs


def send_targets(pairs: list[tuple[dict[str, Any], dict[str, Any], str]]) -> list[Target]:
    """Each customer sends into their conversation, with a unique clientMessageId."""
    return [
        Target(
            path=f"/api/v1/conversations/{conversation}/messages",
            headers={**auth(customer["token"]), "Content-Type": "application/json"},
            pre='{"content":"load test message","clientMessageId":"',
            post='"}',
        )
        for customer, _, conversation in pairs
    ]


def setup_conversations(server: Proc, count: int) -> list[Target]:
    return send_targets(make_pairs(server, count))


def check_stored(database_url: str, acked: list[str]) -> list[str]:
    """Every acknowledged message stored once; per-user events gap-free; two per message."""
    problems = []
    engine = create_engine(database_url)
    with engine.connect() as conn:
        stored: dict[str, int] = dict(
            conn.execute(  # type: ignore[arg-type]
                text(
                    "SELECT client_message_id, count(*) FROM messages "
                    "WHERE client_message_id IS NOT NULL GROUP BY client_message_id"
                )
            ).all()
        )
        lost = [cid for cid in acked if cid not in stored]
        duplicated = [cid for cid, n in stored.items() if n > 1]
        if lost:
            problems.append(f"{len(lost)} acknowledged messages not stored, e.g. {lost[:3]}")
        if duplicated:
            problems.append(f"{len(duplicated)} messages stored twice, e.g. {duplicated[:3]}")
        if len(set(acked)) != len(acked):
            problems.append("the server acknowledged one clientMessageId twice as new")
        gaps = conn.execute(
            text(
                "SELECT e.user_id FROM user_events e "
                "JOIN user_event_counters c ON c.user_id = e.user_id "
                "GROUP BY e.user_id, c.last_seq "
                "HAVING count(*) != max(e.seq) - min(e.seq) + 1 OR max(e.seq) != c.last_seq"
            )
        ).all()
        if gaps:
            problems.append(f"{len(gaps)} users whose events have a gap")
        messages = conn.execute(text("SELECT count(*) FROM messages")).scalar_one()
        created = conn.execute(
            text("SELECT count(*) FROM user_events WHERE type = 'message.created'")
        ).scalar_one()
        if created != 2 * messages:
            problems.append(f"{messages} messages but {created} message.created events")
    engine.dispose()
    return problems


def errors_of(name: str, load: Load) -> list[str]:
    problems = []
    if load.server_errors:
        problems.append(f"{name}: {load.server_errors} answers were 5xx ({load.codes})")
    bad = {c: n for c, n in load.codes.items() if not 200 <= c < 300 and c < 500}
    if bad:
        problems.append(f"{name}: unexpected answers {bad}")
    if load.socket_errors:
        problems.append(f"{name}: {load.socket_errors} socket errors or timeouts")
    if load.ok == 0:
        problems.append(f"{name}: nothing succeeded")
    return problems


def measure_pesan(
    server: Proc, baseline: Proc, targets: list[Target], seconds: float, smoke: bool
) -> tuple[dict[str, Any], list[str], list[str]]:
    """Warm up, then 32 connections (in rounds, alternating with the baseline), 1
    connection, and half the peak rate."""
    acked: list[str] = []
    problems: list[str] = []
    if not smoke:  # warm up
        acked += wrk(server.base, targets, connections=8, seconds=2, capture=CAPTURE).acked
    rounds = max(1, round(seconds / 2))
    step = seconds / rounds
    base_targets = baseline_targets(len(targets))
    both = alternate(
        {
            "baseline": lambda: wrk(baseline.base, base_targets, connections=32, seconds=step),
            "pesan": lambda: wrk(
                server.base, targets, connections=32, seconds=step, capture=CAPTURE
            ),
        },
        rounds,
    )
    c32, base32 = both["pesan"], both["baseline"]
    problems += errors_of("baseline", base32)
    c1 = wrk(server.base, targets, connections=1, seconds=seconds, capture=CAPTURE)
    half_rate = max(1.0, c32.rate / 2)
    delay_ms = 32 * 1000 / half_rate
    # Long enough for each connection to send a few paced requests, even when a slow machine
    # made the peak (and so the pace) low: a short smoke run must not fail on timing.
    paced_step = min(30.0, max(step, 3 * delay_ms / 1000))
    # The baseline at the same paced rate shows what the machine itself adds to a request
    # that arrives at an idle server (waking processes up on a busy machine takes time).
    paced_both = alternate(
        {
            "baseline": lambda: wrk(
                baseline.base, base_targets, connections=32, seconds=paced_step, delay_ms=delay_ms
            ),
            "pesan": lambda: wrk(
                server.base,
                targets,
                connections=32,
                seconds=paced_step,
                capture=CAPTURE,
                delay_ms=delay_ms,
            ),
        },
        rounds,
    )
    paced, base_paced = paced_both["pesan"], paced_both["baseline"]
    for name, load in (("32 connections", c32), ("1 connection", c1), ("half rate", paced)):
        problems += errors_of(name, load)
        acked += load.acked
    figures = {
        "baseline_c32": base32.summary(),
        "ratio": round(c32.rate / base32.rate, 3) if base32.rate else None,
        "c32": c32.summary(),
        "c1": c1.summary(),
        "half_peak": {**paced.summary(), "asked_rate": round(half_rate, 1)},
        "baseline_half_peak": base_paced.summary(),
        "c32_over_c1": round(c32.rate / c1.rate, 2) if c1.rate else None,
    }
    return figures, acked, problems


def run(db: str, workers: int, seconds: float, smoke: bool, conversations: int) -> None:
    result: dict[str, Any] = {"database": db, "smoke": smoke, "conversations": conversations}
    problems: list[str] = []
    with workdir() as tmp:
        baseline = start_baseline(tmp)
        try:
            if not smoke:
                wrk(baseline.base, baseline_targets(conversations), connections=8, seconds=1)
            process_counts = [1] if db == "sqlite" else sorted({1, workers})
            for n in process_counts:
                figures, problems_n = _one_server(
                    tmp, baseline, db, n, seconds, smoke, conversations
                )
                result[f"processes_{n}"] = figures
                problems += problems_n
        finally:
            baseline.stop()
        if len(process_counts) > 1:
            one = result["processes_1"]["c32"]["rate"]
            many = result[f"processes_{workers}"]["c32"]["rate"]
            result[f"processes_{workers}_over_1"] = round(many / one, 2) if one else None
    result["targets"] = {
        "ratio_at_least": 0.25 if db == "sqlite" else 0.15,
        "c32_over_c1_at_least": 1.0,
        "half_peak_p99_ms_below": 100,
        "two_processes_over_one_at_least": None if db == "sqlite" else 1.6,
    }
    write_results(f"send-{db}" + ("-smoke" if smoke else ""), result)
    fail(problems)


def _one_server(
    tmp: Path,
    baseline: Proc,
    db: str,
    processes: int,
    seconds: float,
    smoke: bool,
    conversations: int,
) -> tuple[dict[str, Any], list[str]]:
    run_dir = tmp / f"{db}-{processes}"
    run_dir.mkdir()
    if db == "sqlite":
        url = f"sqlite:///{run_dir / 'data' / 'pesan.sqlite3'}"
        server = start_pesan(run_dir)
        return _measure_and_check(server, baseline, url, seconds, smoke, conversations)
    with pg_database() as url:
        pesan_upgrade(url)
        env = {"PESAN_REDIS_URL": REDIS_URL} if processes > 1 else {}
        server = start_pesan(run_dir, database_url=url, workers=processes, **env)
        return _measure_and_check(server, baseline, url, seconds, smoke, conversations)


def _measure_and_check(
    server: Proc, baseline: Proc, url: str, seconds: float, smoke: bool, conversations: int
) -> tuple[dict[str, Any], list[str]]:
    try:
        targets = setup_conversations(server, conversations)
        figures, acked, problems = measure_pesan(server, baseline, targets, seconds, smoke)
    finally:
        server.stop()
    problems += check_stored(url, acked)
    figures["acknowledged_checked"] = len(acked)
    return figures, problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workers", type=int, default=2, help="PostgreSQL: also measure N")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--conversations", type=int, default=32)
    parser.add_argument("--smoke", action="store_true", help="short; fails on errors only")
    args = parser.parse_args()
    seconds = 1 if args.smoke else args.seconds
    conversations = 4 if args.smoke else args.conversations
    run(args.db, args.workers, seconds, args.smoke, conversations)


if __name__ == "__main__":
    main()
