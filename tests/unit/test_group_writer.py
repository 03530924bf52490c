"""SQLite's group writer: jobs that wait together commit together, each in its own savepoint,
so one that fails leaves no row and no event behind and the others are stored; nothing is
answered before the commit."""

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from pesan import migrate
from pesan.accounts.service import create_user
from pesan.db import CoreJobMisuse, Database, connection_of, table_of
from pesan.ids import new_id
from pesan.live import events
from pesan.live.models import UserEvent
from pesan.probes import WriteProbe
from pesan.roles import Role
from pesan.timeutil import utcnow


def test_a_failing_job_takes_nothing_of_the_others_with_it(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'group.sqlite3'}")
    migrate.upgrade(db.engine)
    with db.transaction() as session:
        user = create_user(
            session, email="a@example.com", password_hash="x", name="A", role=Role.customer
        )
    release = threading.Event()

    def blocker(session: Session) -> str:
        release.wait(10)  # holds the writer, so the next three queue up and share a batch
        return "first"

    def good(session: Session) -> str:
        probe = new_id()
        session.add(WriteProbe(id=probe))
        events.record(session, [user.id], "probe.written", {"id": probe})
        return probe

    def bad(session: Session) -> str:
        session.add(WriteProbe(id=new_id()))
        session.flush()
        events.record(session, [user.id], "probe.written", {"id": "never"})
        raise ValueError("refused")

    async def run() -> list[object]:
        first = asyncio.ensure_future(db.write(blocker))
        await asyncio.sleep(0.2)
        rest = [asyncio.ensure_future(db.write(job)) for job in (good, bad, good)]
        await asyncio.sleep(0.2)
        assert not any(f.done() for f in rest)
        release.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    try:
        answers = asyncio.run(run())
    finally:
        db.dispose()
    assert answers[0] == "first"
    assert isinstance(answers[2], ValueError)
    with db.reader() as session:
        probes = set(session.scalars(select(WriteProbe.id)))
        written = session.scalars(select(UserEvent.seq).order_by(UserEvent.seq)).all()
        payloads = [e.payload["id"] for e in session.scalars(select(UserEvent))]
        total = session.scalar(select(func.count()).select_from(WriteProbe))
    assert probes == {answers[1], answers[3]} and total == 2
    assert list(written) == [1, 2]
    assert "never" not in payloads


def test_a_job_whose_writes_are_refused_gets_the_error(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'group.sqlite3'}")
    migrate.upgrade(db.engine)

    def same_row(session: Session) -> None:
        session.add(WriteProbe(id="01JAAAAAAAAAAAAAAAAAAAAAAA"))

    async def run() -> list[object]:
        return await asyncio.gather(db.write(same_row), return_exceptions=True)

    try:
        first = asyncio.run(run())
        second = asyncio.run(run())  # the same primary key again: the insert itself fails
    finally:
        db.dispose()
    assert first == [None]
    assert isinstance(second[0], Exception)


def test_a_job_refused_as_its_savepoint_ends_publishes_nothing(tmp_path: Path) -> None:
    """Its events are written (and their publication queued) before its last rows are
    flushed; when that flush fails, neither the rows nor the publication may outlive it."""
    db = Database(f"sqlite:///{tmp_path / 'group.sqlite3'}")
    migrate.upgrade(db.engine)
    taken = "01JAAAAAAAAAAAAAAAAAAAAAAA"
    with db.transaction() as session:
        user = create_user(
            session, email="a@example.com", password_hash="x", name="A", role=Role.customer
        )
        session.add(WriteProbe(id=taken))
    published: list[events.Event] = []
    db.publisher = published.extend
    release = threading.Event()

    def blocker(session: Session) -> None:
        release.wait(10)

    def refused_late(session: Session) -> None:
        events.record(session, [user.id], "probe.written", {"id": "never"})
        session.add(WriteProbe(id=taken))  # flushed only as the savepoint ends: refused

    def good(session: Session) -> None:
        events.record(session, [user.id], "probe.written", {"id": "kept"})

    async def run() -> list[object]:
        first = asyncio.ensure_future(db.write(blocker))
        await asyncio.sleep(0.2)
        rest = [asyncio.ensure_future(db.write(job)) for job in (refused_late, good)]
        await asyncio.sleep(0.2)
        release.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    try:
        answers = asyncio.run(run())
    finally:
        db.dispose()
    assert isinstance(answers[1], Exception) and answers[2] is None
    with db.reader() as session:
        stored = [(e.seq, e.payload["id"]) for e in session.scalars(select(UserEvent))]
    assert stored == [(1, "kept")]
    assert [(e.seq, e.data["id"]) for e in published] == [(1, "kept")]


def test_core_jobs_share_the_commit_and_a_failing_one_leaves_nothing(tmp_path: Path) -> None:
    """`orm=False` jobs run in plain SQL savepoints: the same promise as the ORM ones."""
    db = Database(f"sqlite:///{tmp_path / 'group.sqlite3'}")
    migrate.upgrade(db.engine)
    with db.transaction() as session:
        user = create_user(
            session, email="a@example.com", password_hash="x", name="A", role=Role.customer
        )
    probes = table_of(WriteProbe)
    release = threading.Event()

    def blocker(session: Session) -> None:
        release.wait(10)

    def core(name: str, fail: bool = False) -> Callable[[Session], str]:
        def work(session: Session) -> str:
            connection_of(session).execute(insert(probes).values(id=name, checked_at=utcnow()))
            events.record(session, [user.id], "probe.written", {"id": name})
            if fail:
                raise ValueError("refused")
            return name

        return work

    def orm_in_core(session: Session) -> None:
        session.add(WriteProbe(id=new_id()))

    async def batch(jobs: list[Callable[[Session], object]]) -> list[object]:
        release.clear()
        first = asyncio.ensure_future(db.write(blocker))
        await asyncio.sleep(0.2)
        rest = [asyncio.ensure_future(db.write(job, orm=False)) for job in jobs]
        await asyncio.sleep(0.2)
        release.set()
        return (await asyncio.gather(first, *rest, return_exceptions=True))[1:]

    async def run() -> tuple[list[object], list[object]]:
        kept = await batch([core("a" * 26), core("b" * 26, fail=True), core("c" * 26)])
        # A Core job that changes ORM objects is a bug; its batch fails, nothing of it stays.
        misused = await batch([core("d" * 26), orm_in_core])
        return kept, misused

    try:
        kept, misused = asyncio.run(run())
    finally:
        db.dispose()
    assert kept[0] == "a" * 26 and kept[2] == "c" * 26 and isinstance(kept[1], ValueError)
    assert all(isinstance(answer, CoreJobMisuse) for answer in misused)
    with db.reader() as session:
        stored = set(session.scalars(select(WriteProbe.id)))
        written = [(e.seq, e.payload["id"]) for e in session.scalars(select(UserEvent))]
    assert stored == {"a" * 26, "c" * 26}
    assert written == [(1, "a" * 26), (2, "c" * 26)]


def test_a_job_never_sees_an_object_an_earlier_job_of_its_batch_loaded(tmp_path: Path) -> None:
    """Core jobs change rows behind the session's back; the next job must read them anew."""
    db = Database(f"sqlite:///{tmp_path / 'group.sqlite3'}")
    migrate.upgrade(db.engine)
    probe = new_id()
    then, later = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
    with db.transaction() as session:
        session.add(WriteProbe(id=probe, checked_at=then))
    probes = table_of(WriteProbe)
    release = threading.Event()

    def blocker(session: Session) -> None:
        release.wait(10)

    def read(session: Session) -> tuple[WriteProbe, datetime]:
        row = session.get(WriteProbe, probe)
        assert row is not None
        return row, row.checked_at  # the object answered is held on to: not collected

    def change(session: Session) -> None:
        connection_of(session).execute(
            update(probes).where(probes.c.id == probe).values(checked_at=later)
        )

    async def run() -> list[Any]:
        first = asyncio.ensure_future(db.write(blocker))
        await asyncio.sleep(0.2)
        rest = [
            asyncio.ensure_future(db.write(read)),
            asyncio.ensure_future(db.write(change, orm=False)),
            asyncio.ensure_future(db.write(read)),
        ]
        await asyncio.sleep(0.2)
        release.set()
        return await asyncio.gather(first, *rest)

    try:
        answers = asyncio.run(run())
    finally:
        db.dispose()
    assert answers[1][1] == then and answers[3][1] == later
