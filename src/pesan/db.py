"""Engine, sessions and the transaction helper. Migrations live in `migrations/` beside it.

One use case is one transaction: `with db.transaction() as session: ...` commits when the
block ends and rolls back if it raises. Work registered with `after_commit(session, fn)`
runs only once the commit succeeded (live-event publishing uses it).
"""

import asyncio
import logging
import queue
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Engine,
    MetaData,
    Table,
    create_engine,
    event,
)
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from pesan.timeutil import as_utc

log = logging.getLogger("pesan.db")
T = TypeVar("T")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def table_of(model: type[Base]) -> Table:
    """A model's Core table, for statements built once and run without the ORM."""
    return cast(Table, model.__table__)


def one_of(column: str, words: Iterable[StrEnum]) -> CheckConstraint:
    """A CHECK that `column` holds one of a word list's values (named `ck_<table>_<column>`).

    The list itself is kept in the constraint's `info`, so tests and `pesan db check` can
    compare every such column with the code's one definition of its words.
    """
    values = [w.value for w in words]
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(
        f"{column} IN ({listed})", name=column, info={"one_of": values, "column": column}
    )


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way in and out, whatever the database keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


WRITE_LOCK_TIMEOUT_SECONDS = 30.0
SQLITE_MMAP_BYTES = 1 << 30


def make_engine(url: str, pool_size: int = 32) -> Engine:
    """The engine; its pool holds a connection for each worker thread (`pool_size`), plus a
    few for work outside them, so no request waits for a connection a thread could use."""
    if url.startswith("sqlite"):
        path = make_url(url).database
        pool: dict[str, Any] = {}
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            pool = {"pool_size": pool_size, "max_overflow": 8}
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": WRITE_LOCK_TIMEOUT_SECONDS},
            **pool,
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=8)


class FairLock:
    """A lock handed to waiting threads in the order they asked for it (first come, first
    served), so no writer starves; `threading.Lock` promises no order."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: deque[threading.Lock] = deque()
        self._held = False

    def acquire(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            waiter = threading.Lock()
            waiter.acquire()
            self._waiters.append(waiter)
        if waiter.acquire(timeout=timeout):
            return True  # release() handed the lock straight to us
        with self._mutex:
            try:
                self._waiters.remove(waiter)
                return False
            except ValueError:  # handed to us just as we gave up: we hold it after all
                return True

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().release()
            else:
                self._held = False


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling is off; we emit BEGIN ourselves so that writers
    # take the lock up front (BEGIN IMMEDIATE) and wait for it instead of failing later.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Reads through a shared memory map (the OS page cache) instead of each connection's
        # own 2 MB page cache: a large database stays as fast to read as a small one.
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("pesan_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    def __init__(self, url: str, pool_size: int = 32) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size)
        self.dialect = self.engine.dialect.name
        # SQLite has one writer at a time. Writers of this process queue here, in order,
        # instead of polling in SQLite's busy handler (which sleeps and backs off, up to
        # 100 ms a try). Other processes (the CLI) still meet the busy timeout.
        self._write_lock = FairLock() if self.dialect == "sqlite" else None
        self._group: GroupWriter | None = None
        self._group_lock = threading.Lock()
        self._writer = sessionmaker(
            bind=self.engine.execution_options(pesan_write=True), expire_on_commit=False
        )
        self._reader = sessionmaker(bind=self.engine, expire_on_commit=False)
        # Receives the durable events a transaction wrote, after it committed (the broker).
        self.publisher: Callable[[list[Any]], None] | None = None

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write transaction: commit on success, roll back on any exception."""
        lock = self._write_lock
        if lock is not None and not lock.acquire(WRITE_LOCK_TIMEOUT_SECONDS):
            raise OperationalError(
                "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
            )
        try:
            with self._session() as session:
                yield session
        finally:
            if lock is not None:
                lock.release()
        callbacks = session.info.pop("after_commit", [])
        if session.info.pop("committed", False):
            for callback in callbacks:
                try:
                    callback()
                except Exception:  # an after-commit hook must never undo a committed answer
                    log.exception("after-commit hook failed")

    @contextmanager
    def _session(self) -> Iterator[Session]:
        session = self._writer()
        if self.publisher is not None:
            session.info["publish"] = self.publisher
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def reader(self) -> Iterator[Session]:
        session = self._reader()
        try:
            yield session
        finally:
            session.rollback()
            session.close()

    async def write(self, work: Callable[[Session], T]) -> T:
        """Run `work(session)` in a write transaction, from the event loop.

        On SQLite the work joins the group writer's queue: one thread runs the waiting jobs
        back to back in one transaction (group commit), each in its own savepoint, and
        answers each only once that transaction committed. Elsewhere it is an ordinary
        transaction on a worker thread.
        """
        if self._write_lock is None:
            from starlette.concurrency import run_in_threadpool

            def alone() -> T:
                with self.transaction() as session:
                    return work(session)

            return await run_in_threadpool(alone)
        with self._group_lock:
            if self._group is None:
                self._group = GroupWriter(self)
        return await self._group.submit(work)

    def dispose(self) -> None:
        if self._group is not None:
            self._group.stop()
            self._group = None
        self.engine.dispose()


_Job = tuple[Callable[[Session], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class GroupWriter:
    """One thread that runs SQLite write jobs many to a transaction (group commit).

    A job's savepoint keeps a failing job from taking the others with it: its writes and its
    buffered events are undone, and it alone gets the exception. If the commit fails, every
    job of the batch does. Nothing is answered before the commit, so an answer still means
    the write is stored.
    """

    MAX_BATCH = 64

    def __init__(self, db: "Database") -> None:
        self.db = db
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="pesan-group-writer", daemon=True)
        self.thread.start()

    async def submit(self, work: Callable[[Session], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self.jobs.put((work, loop, future))
        return await future

    def stop(self) -> None:
        self.jobs.put(None)

    def _run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            batch = [job]
            while len(batch) < self.MAX_BATCH:
                try:
                    more = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._commit(batch)
                    return
                batch.append(more)
            self._commit(batch)

    def _commit(self, batch: list[_Job]) -> None:
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            with self.db.transaction() as session:
                for work, _, _ in batch:
                    pending = session.info.setdefault("pending_events", [])
                    mark = len(pending)
                    try:
                        with session.begin_nested():  # its writes are flushed on leaving
                            value = work(session)
                    except Exception as exc:
                        del session.info.setdefault("pending_events", [])[mark:]
                        outcomes.append((None, exc))
                    else:
                        outcomes.append((value, None))
        except Exception as failed:
            outcomes = [(None, failed) for _ in batch]
        for (_, loop, future), (value, error) in zip(batch, outcomes, strict=True):
            if not loop.is_closed():
                loop.call_soon_threadsafe(_settle, future, value, error)


def _settle(future: "asyncio.Future[Any]", value: Any, exc: BaseException | None) -> None:
    if future.done():  # the request went away meanwhile
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(value)


@event.listens_for(Session, "after_commit")
def _mark_committed(session: Session) -> None:
    session.info["committed"] = True


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    session.info.setdefault("after_commit", []).append(callback)


def insert_or_existing(session: Session, row: T, existing: Callable[[], T | None]) -> T:
    """Insert `row`, or answer the row a concurrent writer made first (a unique key refused ours).

    The insert runs in a savepoint, so losing the race leaves the transaction usable.
    """
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        found = existing()
        if found is None:
            raise
        return found
    return row
