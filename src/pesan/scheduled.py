"""Periodic work, in one place: each job is one function that finds what is due and owns its
own transactions, safe when every server process runs it at once (a compare-and-set makes
each effect happen exactly once). The app runs them on its event loop; `pesan bookings
expire` runs one from the command line."""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from starlette.concurrency import run_in_threadpool

from pesan import metrics
from pesan.bookings import scheduled as bookings
from pesan.bookings.rules import Policy
from pesan.clock import Clock
from pesan.config import Settings
from pesan.db import Database
from pesan.errors import is_database_outage, outage_summary
from pesan.live import events

log = logging.getLogger("pesan.scheduled")


@dataclass(frozen=True)
class Job:
    name: str
    every: Callable[[Settings], float]  # seconds between runs
    run: Callable[[Database, datetime, Settings], int]  # how many things it did


def _prune(db: Database, now: datetime, settings: Settings) -> int:
    with db.transaction() as session:
        return events.prune(session, now - timedelta(days=settings.event_retention_days))


JOBS = (
    Job(
        "expire-requests",
        lambda s: s.tick_seconds,
        lambda db, now, s: bookings.expire_due(db, now, Policy.from_settings(s)),
    ),
    Job(
        "send-reminders",
        lambda s: max(s.tick_seconds, 5.0),
        lambda db, now, s: bookings.remind_due(db, now, Policy.from_settings(s)),
    ),
    Job("prune-events", lambda s: 3600.0, _prune),
)


def run_job(job: Job, db: Database, now: datetime, settings: Settings) -> int:
    """Run one job once; a failure is logged and counted, never raised into the ticker."""
    try:
        done = job.run(db, now, settings)
    except Exception as exc:
        metrics.JOB_RUNS.labels(job=job.name, outcome="error").inc()
        if is_database_outage(exc):  # expected while the database is away: one line
            log.warning("job %s skipped, database unavailable: %s", job.name, outage_summary(exc))
        else:
            log.exception("job %s failed", job.name)
        return 0
    metrics.JOB_RUNS.labels(job=job.name, outcome="ok").inc()
    if done:
        metrics.JOB_EFFECTS.labels(job=job.name).inc(done)
        log.info("job %s: %d done", job.name, done)
    return done


async def run_forever(db: Database, clock: Clock, settings: Settings) -> None:
    """Each job every `job.every` seconds, on this process's event loop, until cancelled."""
    next_run = dict.fromkeys((job.name for job in JOBS), 0.0)
    loop = asyncio.get_running_loop()
    while True:
        for job in JOBS:
            if loop.time() >= next_run[job.name]:
                await run_in_threadpool(run_job, job, db, clock.now(), settings)
                next_run[job.name] = loop.time() + job.every(settings)
        await asyncio.sleep(max(0.05, min(next_run.values()) - loop.time()))
