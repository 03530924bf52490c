"""Book Now under load, spread over providers and time slots: pesan against a bare FastAPI
POST, in one run.

32 therapists with a 60-minute service and 32 customers; wrk posts scheduled bookings, each
for a slot no other request asks for (provider k mod 32, every two hours from tomorrow),
each with its own Idempotency-Key, at 32 connections (in rounds alternating with the
baseline) and at 1. Afterwards every acknowledged booking must exist exactly once, with its
booking message, and no provider may hold two bookings that overlap.

    .venv/bin/python bench/booknow.py [--seconds 8] [--smoke]

Writes bench/results/booknow.json. Target: >= 500 bookings/s on SQLite with one process,
and no 5xx. Fails (exit 1) on any 5xx, any answer but 201, or a lost or doubled booking;
never on timing.
"""

import argparse
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from harness import (
    Api,
    Load,
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
from send import errors_of
from sqlalchemy import create_engine, text

CAPTURE = '"booking":{"id":"([^"]*)"'
PROVIDERS = 32
BOOKERS = 32
SLOT_HOURS = 2
DAYS_PER_RUN = 45  # each wrk run books its own stretch of the calendar


def setup(server: Proc) -> tuple[list[dict[str, str]], list[str]]:
    api = Api(server.base)
    providers = []
    for _ in range(PROVIDERS):
        therapist = api.register("therapist")
        headers = {"Authorization": f"Bearer {therapist['token']}"}
        api.http.put("/providers/me", headers=headers, json={"area": "Ubud"}).raise_for_status()
        r = api.http.post(
            "/providers/me/services",
            headers=headers,
            json={"name": "Balinese massage", "durationMinutes": 60, "price": {"amount": 150000}},
        )
        r.raise_for_status()
        api.http.put(
            "/providers/me/presence", headers=headers, json={"presence": "available"}
        ).raise_for_status()
        # Open around the clock for a year, so that every slot the benchmark asks for is one
        # the provider offers (the rules are the same; only the calendar is wider).
        always = [{"opens": "00:00", "closes": "24:00"}]
        api.http.put(
            "/providers/me/schedule",
            headers=headers,
            json={
                "weeklyHours": dict.fromkeys(
                    ("mon", "tue", "wed", "thu", "fri", "sat", "sun"), always
                ),
                "horizonDays": 366,
                "bufferAfterMinutes": 15,
            },
        ).raise_for_status()
        providers.append({"id": therapist["id"], "svc": r.json()["id"]})
    bookers = [f"Bearer {api.register('customer')['token']}" for _ in range(BOOKERS)]
    return providers, bookers


class Calendar:
    """Hands each wrk run a stretch of future days that no other run books into."""

    def __init__(self) -> None:
        tomorrow = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.next_start = tomorrow + timedelta(days=1)

    def lua(self, providers: list[dict[str, str]], bookers: list[str]) -> str:
        start = int(self.next_start.timestamp())
        self.next_start += timedelta(days=DAYS_PER_RUN)
        slots = DAYS_PER_RUN * 24 // SLOT_HOURS
        return f"""
local providers = {{{",".join(f'{{id="{p["id"]}",svc="{p["svc"]}"}}' for p in providers)}}}
local bookers = {{{",".join(json.dumps(b) for b in bookers)}}}
local base = {start}
local slots = {slots}

function request()
  n = n + 1
  local k = (n - 1) * nthreads + (tid - 1)
  local p = providers[k % #providers + 1]
  local slot = math.floor(k / #providers) % slots
  local booker = bookers[(k + slot) % #bookers + 1]
  local start = os.date("!%Y-%m-%dT%H:%M:%SZ", base + slot * {SLOT_HOURS * 3600})
  local body = '{{"providerId":"' .. p.id .. '","serviceId":"' .. p.svc ..
    '","mode":"scheduled","startAt":"' .. start ..
    '","location":{{"kind":"villa","room":"Villa ' .. (k % 50) .. '"}},"guestName":"Guest"}}'
  return wrk.format("POST", "/api/v1/bookings", {{
    ["Authorization"] = booker, ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = run .. tid .. "-" .. n}}, body)
end
"""


def check_stored(url: str, acked: list[str]) -> list[str]:
    problems = []
    engine = create_engine(url)
    with engine.connect() as conn:
        stored = {r[0] for r in conn.execute(text("SELECT id FROM bookings"))}
        lost = [b for b in acked if b not in stored]
        if lost:
            problems.append(f"{len(lost)} acknowledged bookings not stored, e.g. {lost[:3]}")
        if len(set(acked)) != len(acked):
            problems.append("one booking was acknowledged twice as new")
        cards = conn.execute(
            text("SELECT count(*) FROM messages WHERE message_type = 'booking'")
        ).scalar_one()
        if cards != len(stored):
            problems.append(f"{len(stored)} bookings but {cards} booking messages")
        overlaps = conn.execute(
            text(
                "SELECT count(*) FROM bookings a JOIN bookings b ON a.provider_id = b.provider_id "
                "AND a.id < b.id AND a.start_at < b.end_at AND b.start_at < a.end_at "
                "WHERE a.status = 'pending' AND b.status = 'pending'"
            )
        ).scalar_one()
        if overlaps:
            problems.append(f"{overlaps} pairs of overlapping pending bookings")
    engine.dispose()
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--smoke", action="store_true", help="short; fails on errors only")
    args = parser.parse_args()
    seconds = 1.0 if args.smoke else args.seconds
    rounds = 1 if args.smoke else min(4, max(1, round(seconds / 2)))
    step = seconds / rounds
    problems: list[str] = []
    calendar = Calendar()
    with workdir() as tmp:
        url = f"sqlite:///{tmp / 'data' / 'pesan.sqlite3'}"
        baseline = start_baseline(tmp)
        server = start_pesan(tmp)
        try:
            providers, bookers = setup(server)

            def book(connections: int, secs: float) -> Load:
                return wrk(
                    server.base,
                    baseline_targets(1),  # replaced by the script's own request()
                    connections=connections,
                    seconds=secs,
                    capture=CAPTURE,
                    extra_lua=calendar.lua(providers, bookers),
                )

            both = alternate(
                {
                    "baseline": lambda: wrk(
                        baseline.base, baseline_targets(32), connections=32, seconds=step
                    ),
                    "pesan": lambda: book(32, step),
                },
                rounds,
            )
            c1 = book(1, seconds)
        finally:
            server.stop()
            baseline.stop()
        c32, base32 = both["pesan"], both["baseline"]
        problems += errors_of("Book Now at 32", c32) + errors_of("Book Now at 1", c1)
        problems += errors_of("baseline", base32)
        problems += check_stored(url, c32.acked + c1.acked)
    result: dict[str, Any] = {
        "smoke": args.smoke,
        "providers": PROVIDERS,
        "bookers": BOOKERS,
        "c32": c32.summary(),
        "c1": c1.summary(),
        "baseline_c32": base32.summary(),
        "ratio": round(c32.rate / base32.rate, 3) if base32.rate else None,
        "target_bookings_per_second_at_least": 500,
    }
    write_results("booknow" + ("-smoke" if args.smoke else ""), result)
    fail(problems)


if __name__ == "__main__":
    main()
