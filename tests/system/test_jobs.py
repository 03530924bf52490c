"""Periodic work is exactly once across server processes: two processes race over the same
expiries and reminders at the same (controlled) times, and each effect happens once. And
`pesan bookings expire` runs the expiry once from the command line."""

import multiprocessing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import text

from tests.conftest import Api, FakeClock, parse_time
from tests.system.conftest import pesan_env, run_pesan

ROUNDS = 3


def _race(url: str, times: list[str], barrier: Any, results: Any) -> None:
    """One server process's ticker, run by hand: every job at each of `times`, in step with the
    other process (the barrier), as two servers sharing one database would."""
    from pesan import scheduled
    from pesan.config import Settings
    from pesan.db import Database

    settings = Settings(database_url=url, argon2_time_cost=1, argon2_memory_kib=64)
    db = Database(settings.resolved_database_url)
    done = 0
    try:
        for at in times:
            barrier.wait(timeout=60)
            for job in scheduled.JOBS:
                done += scheduled.run_job(job, db, datetime.fromisoformat(at), settings)
    finally:
        db.dispose()
    results.put(done)


def scalar(app: FastAPI, sql: str, **params: Any) -> int:
    with app.state.db.engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def test_two_processes_expire_and_remind_each_booking_once(
    api: Api, app: FastAPI, clock: FakeClock
) -> None:
    # Eight `now` requests nobody answers, and five accepted bookings starting at one time.
    pending = []
    for _ in range(8):
        provider = api.provider("therapist")
        pending.append(api.book(api.register("customer"), provider)["booking"]["id"])
    accepted = []
    start: str | None = None
    for _ in range(5):
        provider = api.provider("therapist")
        start = start or api.slot(provider, after=clock.at)
        booking = api.book(api.register("hotel"), provider, mode="scheduled", startAt=start)
        assert api.act(provider, booking["booking"]["id"], "accept").status_code == 200
        accepted.append(booking["booking"]["id"])
    assert start is not None
    race_at = parse_time(start) - timedelta(hours=1)  # every request due, every reminder due
    times = [(race_at + timedelta(seconds=i)).isoformat() for i in range(ROUNDS)]

    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(2), spawn.Queue()
    url = app.state.settings.resolved_database_url
    workers = [spawn.Process(target=_race, args=(url, times, barrier, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    done = [results.get(timeout=5) for _ in workers]

    assert sum(done) == len(pending) + len(accepted)  # between them, each effect once
    for booking_id in pending:
        assert (
            scalar(
                app,
                "SELECT count(*) FROM bookings WHERE id = :b AND status = 'expired'",
                b=booking_id,
            )
            == 1
        )
        assert (
            scalar(
                app,
                "SELECT count(*) FROM messages WHERE booking_id = :b "
                "AND content LIKE 'Booking expired%'",
                b=booking_id,
            )
            == 1
        )
        assert (
            scalar(
                app,
                "SELECT count(*) FROM admin_messages WHERE booking_id = :b "
                "AND kind = 'booking.expired'",
                b=booking_id,
            )
            == 1
        )
    for booking_id in accepted:
        assert (
            scalar(
                app,
                "SELECT count(*) FROM messages WHERE booking_id = :b AND content LIKE 'Reminder:%'",
                b=booking_id,
            )
            == 1
        )
    updates = scalar(app, "SELECT count(*) FROM user_events WHERE type = 'booking.updated'")
    # each party heard each booking's accept (5 x 2) and each expiry (8 x 2) once
    assert updates == 2 * len(accepted) + 2 * len(pending)


def test_pesan_bookings_expire_runs_it_once(tmp_path: Path) -> None:
    from pesan import migrate
    from pesan.accounts.service import create_user
    from pesan.auth import Caller
    from pesan.bookings import service
    from pesan.bookings.rules import Policy
    from pesan.bookings.schemas import BookNowIn
    from pesan.db import Database
    from pesan.providers import service as providers
    from pesan.providers.schemas import PresenceIn, ServiceIn
    from pesan.roles import Role
    from pesan.timeutil import utcnow

    data = tmp_path / "data"
    env = pesan_env(data_dir=data)
    db = Database(f"sqlite:///{data / 'pesan.sqlite3'}")
    migrate.upgrade(db.engine)
    an_hour_ago = utcnow() - timedelta(hours=1)
    with db.transaction() as session:
        customer = create_user(
            session, email="c@example.com", password="x" * 8, name="C", role=Role.customer
        )
        therapist = create_user(
            session, email="t@example.com", password="x" * 8, name="T", role=Role.therapist
        )
        as_therapist = Caller(therapist.id, "T", Role.therapist, "t@example.com")
        providers.set_presence(session, as_therapist, PresenceIn(presence="available"))
        offered = providers.add_service(
            session,
            as_therapist,
            ServiceIn.model_validate(
                {"name": "Massage", "durationMinutes": 60, "price": {"amount": 100000}}
            ),
        )
        service.book_now(
            session,
            Caller(customer.id, "C", Role.customer, "c@example.com"),
            BookNowIn.model_validate(
                {
                    "providerId": therapist.id,
                    "serviceId": offered.id,
                    "mode": "now",
                    "location": {"kind": "place"},
                }
            ),
            None,
            an_hour_ago,  # made an hour ago: its five minutes are long gone
            Policy(),
        )
    db.dispose()

    first = run_pesan("bookings", "expire", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "expire-requests: 1"
    again = run_pesan("bookings", "expire", env=env, cwd=tmp_path)
    assert again.stdout.strip() == "expire-requests: 0"
