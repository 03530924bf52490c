"""SQLite's group writer: jobs that wait together commit together, each in its own savepoint,
so one that fails leaves no row and no event behind and the others are stored; nothing is
answered before the commit. The batch runs on the event loop, which never waits: a write
turn or lock held elsewhere sends the batch to the writer's thread."""

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import event, func, insert, select, update
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

Job = Callable[[Session], Any]


def together(db: Database, *jobs: Job, orm: bool = True) -> tuple[list[Any], int]:
    """The jobs' writes, asked for at once so that they wait together: their answers (or
    errors), and how many transactions committed."""
    commits: list[object] = []

    def count(connection: object) -> None:
        commits.append(connection)

    async def run() -> list[Any]:
        # Bounded: a job never answered (a bug) fails the test instead of hanging it.
        writes = asyncio.gather(*(db.write(j, orm=orm) for j in jobs), return_exceptions=True)
        return await asyncio.wait_for(writes, 30)

    event.listen(db.engine, "commit", count)
    try:
        return asyncio.run(run()), len(commits)
    finally:
        event.remove(db.engine, "commit", count)


def _loop_batches() -> tuple[float, float]:
    """The group commits run on the loop so far, and their jobs (the metric operators see)."""
    count = REGISTRY.get_sample_value("pesan_group_commit_jobs_count", {"where": "loop"})
    total = REGISTRY.get_sample_value("pesan_group_commit_jobs_sum", {"where": "loop"})
    return count or 0.0, total or 0.0


def test_a_failing_job_takes_nothing_of_the_others_with_it(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'group.sqlite3'}")
    migrate.upgrade(db.engine)
    with db.transaction() as session:
        user = create_user(
            session, email="a@example.com", password_hash="x", name="A", role=Role.customer
        )

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

    jobs_before = _loop_batches()
    try:
        answers, commits = together(db, good, bad, good)
    finally:
        db.dispose()
    assert commits == 1  # one batch
    assert _loop_batches() == (jobs_before[0] + 1, jobs_before[1] + 3)  # pesan_group_commit_jobs
    assert isinstance(answers[1], ValueError)
    with db.reader() as session:
        probes = set(session.scalars(select(WriteProbe.id)))
        written = session.scalars(select(UserEvent.seq).order_by(UserEvent.seq)).all()
        payloads = [e.payload["id"] for e in session.scalars(select(UserEvent))]
        total = session.scalar(select(func.count()).select_from(WriteProbe))
    assert probes == {answers[0], answers[2]} and total == 2
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

    def refused_late(session: Session) -> None:
        events.record(session, [user.id], "probe.written", {"id": "never"})
        session.add(WriteProbe(id=taken))  # flushed only as the savepoint ends: refused

    def good(session: Session) -> None:
        events.record(session, [user.id], "probe.written", {"id": "kept"})

    try:
        answers, commits = together(db, refused_late, good)
    finally:
        db.dispose()
    assert commits == 1
    assert isinstance(answers[0], Exception) and answers[1] is None
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

    try:
        kept, commits = together(
            db, core("a" * 26), core("b" * 26, fail=True), core("c" * 26), orm=False
        )
        # A Core job that changes ORM objects is a bug; its batch fails, nothing of it stays.
        misused, _ = together(db, core("d" * 26), orm_in_core, orm=False)
    finally:
        db.dispose()
    assert commits == 1
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

    def read(session: Session) -> tuple[WriteProbe, datetime]:
        row = session.get(WriteProbe, probe)
        assert row is not None
        return row, row.checked_at  # the object answered is held on to: not collected

    def change(session: Session) -> None:
        connection_of(session).execute(
            update(probes).where(probes.c.id == probe).values(checked_at=later)
        )

    async def run() -> list[Any]:
        return await asyncio.gather(db.write(read), db.write(change, orm=False), db.write(read))

    try:
        answers = asyncio.run(run())
    finally:
        db.dispose()
    assert answers[0][1] == then and answers[2][1] == later


def _ticking_while(db: Database, job: Job, hold: Callable[[], None]) -> tuple[bool, int, Any]:
    """Asks for `job`'s write while `hold` (already called: something holds the writer)
    lasts 0.3 s more: whether it was answered meanwhile, how often the loop ticked
    meanwhile (every 10 ms if it never waited), and its answer after `hold` ends."""

    async def run() -> tuple[bool, int, Any]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.ensure_future(tick())
        write = asyncio.ensure_future(db.write(job))
        await asyncio.sleep(0.3)
        answered_early, ticked = write.done(), ticks
        hold()
        answer = await asyncio.wait_for(write, 10)
        ticker.cancel()
        return answered_early, ticked, answer

    return asyncio.run(run())


def _probe(session: Session) -> str:
    probe = new_id()
    session.add(WriteProbe(id=probe))
    return probe


def test_another_processs_write_lock_never_stalls_the_loop(tmp_path: Path) -> None:
    """SQLite's write lock held by another connection (as another process would): the batch
    waits for it on the writer's thread, and the loop goes on meanwhile."""
    import sqlite3

    path = tmp_path / "group.sqlite3"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db.engine)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        early, ticks, probe = _ticking_while(db, _probe, lambda: other.execute("COMMIT"))
        written, _ = together(db, _probe)  # and the loop's own connection works again
    finally:
        other.close()
        db.dispose()
    assert not early
    assert ticks >= 10
    with db.reader() as session:
        assert set(session.scalars(select(WriteProbe.id))) == {probe, written[0]}


def test_a_write_turn_held_by_a_thread_never_stalls_the_loop(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'group.sqlite3'}")
    migrate.upgrade(db.engine)
    holding, release = threading.Event(), threading.Event()

    def hold_turn() -> None:
        with db.transaction() as session:
            session.add(WriteProbe(id="01JAAAAAAAAAAAAAAAAAAAAAAA"))
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=hold_turn)
    thread.start()
    assert holding.wait(10)
    try:
        early, ticks, probe = _ticking_while(db, _probe, release.set)
    finally:
        release.set()
        thread.join()
        db.dispose()
    assert not early
    assert ticks >= 10
    with db.reader() as session:
        assert set(session.scalars(select(WriteProbe.id))) == {probe, "01JAAAAAAAAAAAAAAAAAAAAAAA"}


def test_the_writers_thread_checkpoints_what_the_loop_wrote(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """The loop's connection never checkpoints (that waits on the disk); the thread does, so
    the WAL does not grow without end."""
    from pesan.db import GroupWriter

    monkeypatch.setattr(GroupWriter, "CHECKPOINT_SECONDS", 0.0)

    def wal_frames(checkpoints: bool) -> int:
        db = Database(f"sqlite:///{tmp_path / f'{checkpoints}.sqlite3'}")
        migrate.upgrade(db.engine)
        if not checkpoints:
            monkeypatch.setattr(GroupWriter, "_checkpoint", lambda self: None)
        try:
            for _ in range(200):
                together(db, _probe)
            raw = db.engine.raw_connection()
            try:
                # A checkpoint that stops short of nothing: its answer counts the WAL's frames.
                _busy, frames, _done = raw.cursor().execute("PRAGMA wal_checkpoint").fetchone()
            finally:
                raw.close()
        finally:
            db.dispose()
        return int(frames)

    kept_short, without = wal_frames(True), wal_frames(False)
    assert without >= 200  # each commit adds frames; nothing took them out
    assert kept_short < without / 4


def test_a_loop_connection_that_will_not_open_still_answers_every_job(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """No request may hang: the batch goes to the thread, which answers each job."""
    from pesan.db import GroupWriter

    db = Database(f"sqlite:///{tmp_path / 'group.sqlite3'}")
    migrate.upgrade(db.engine)

    def refuse(self: GroupWriter) -> None:
        raise OSError("cannot open")

    monkeypatch.setattr(GroupWriter, "_loop_connection", refuse)
    try:
        answers, _ = together(db, _probe, _probe)
    finally:
        db.dispose()
    assert all(isinstance(a, str) for a in answers)  # written by the thread
    with db.reader() as session:
        assert set(session.scalars(select(WriteProbe.id))) == set(answers)
