"""Engine, sessions and the transaction helper. Migrations live in `migrations/` beside it.

One use case is one transaction: `with db.transaction() as session: ...` commits when the
block ends and rolls back if it raises. Work registered with `after_commit(session, fn)`
runs only once the commit succeeded (live-event publishing uses it).
"""

import asyncio
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar, cast

import orjson
from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Engine,
    MetaData,
    Select,
    Table,
    create_engine,
    event,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable
from sqlalchemy.types import TypeDecorator, TypeEngine

from pesan import metrics
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


@dataclass(frozen=True)
class Timeouts:
    """How long the server lets the database take, in seconds, so no request hangs.

    PostgreSQL gets `statement_timeout` and `lock_timeout` as connection options; SQLite waits
    at most `lock` for another writer (its busy timeout). `connect` bounds reaching the server,
    `pool` waiting for a free connection.
    """

    statement: float = 5.0
    lock: float = 3.0
    connect: float = 3.0
    pool: float = 5.0


# Commands an operator runs (migrations, backups) wait for locks as long as they need (0: no
# limit on PostgreSQL; SQLite's busy timeout stays at 30 s).
PATIENT = Timeouts(statement=0, lock=0, connect=10.0, pool=30.0)


SQLITE_MMAP_BYTES = 1 << 30


def make_engine(url: str, timeouts: Timeouts = PATIENT, pool_size: int = 32) -> Engine:
    """The engine; its pool holds a connection for each worker thread (`pool_size`), plus a
    few for work outside them, so no request waits for a connection a thread could use."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # In memory: one connection per thread, no pool to wait for.
        memory = in_memory(url)
        engine = create_engine(
            url,
            json_serializer=_json_text,
            json_deserializer=orjson.loads,
            connect_args={"check_same_thread": False, "timeout": _busy_seconds(timeouts)},
            **(
                {}
                if memory
                else {"pool_timeout": timeouts.pool, "pool_size": pool_size, "max_overflow": 8}
            ),
        )
        _configure_sqlite(engine, timeouts)
        return engine
    return create_engine(
        url,
        json_serializer=_json_text,
        json_deserializer=orjson.loads,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=8,
        pool_timeout=timeouts.pool,
        connect_args=_postgresql_options(url, timeouts),
    )


def _json_text(value: Any) -> str:
    """JSON columns' text: orjson, several times faster than the standard library (the
    outbox stores each event's payload as JSON, two or more a message)."""
    return orjson.dumps(value).decode()


def _postgresql_options(url: str, timeouts: Timeouts) -> dict[str, Any]:
    """Time limits and the UTC session zone, after any `options` the URL itself carries."""
    ours = ["-c TimeZone=UTC"]
    if timeouts.statement:
        ours.append(f"-c statement_timeout={int(timeouts.statement * 1000)}")
    if timeouts.lock:
        ours.append(f"-c lock_timeout={int(timeouts.lock * 1000)}")
    theirs = make_url(url).query.get("options")
    given = [theirs] if isinstance(theirs, str) else list(theirs or ())
    return {
        "connect_timeout": max(1, math.ceil(timeouts.connect)),
        "options": " ".join([*given, *ours]),
    }


def _busy_seconds(timeouts: Timeouts) -> float:
    return timeouts.lock or 30.0


def _configure_sqlite(engine: Engine, timeouts: Timeouts) -> None:
    # pysqlite's own transaction handling is off; we emit BEGIN ourselves so that writers
    # take the lock up front (BEGIN IMMEDIATE) and wait for it instead of failing later.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(_busy_seconds(timeouts) * 1000)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Reads through a shared memory map (the OS page cache) instead of each connection's
        # own 2 MB page cache: a large database stays as fast to read as a small one.
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # On the DBAPI cursor: SQLAlchemy's execution path cost ~50 us for a statement SQLite
        # runs in a few, on every transaction (reads too). Its errors are raised as
        # SQLAlchemy's all the same, for the outage handlers.
        sql = "BEGIN IMMEDIATE" if conn.get_execution_options().get("pesan_write") else "BEGIN"
        on_cursor(conn, sql, (), lambda cursor: cursor.execute(sql))


class FairLock:
    """A reentrant lock handed to waiting threads in the order they asked for it (first come,
    first served), so no writer starves; `threading.RLock` promises no order."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: deque[tuple[threading.Lock, int]] = deque()
        self._owner: int | None = None
        self._depth = 0

    def acquire(self, timeout: float) -> bool:
        me = threading.get_ident()
        with self._mutex:
            if self._owner == me:
                self._depth += 1
                return True
            if self._owner is None:
                self._owner, self._depth = me, 1
                return True
            waiter = threading.Lock()
            waiter.acquire()
            self._waiters.append((waiter, me))
        if waiter.acquire(timeout=timeout):
            return True  # release() handed the lock straight to us
        with self._mutex:
            try:
                self._waiters.remove((waiter, me))
                return False
            except ValueError:  # handed to us just as we gave up: we hold it after all
                return True

    def release(self) -> None:
        with self._mutex:
            self._depth -= 1
            if self._depth > 0:
                return
            if self._waiters:
                waiter, ident = self._waiters.popleft()
                self._owner, self._depth = ident, 1
                waiter.release()
            else:
                self._owner = None

    def try_acquire(self) -> bool:
        """The lock if nobody holds it (or this thread does), without waiting in line."""
        me = threading.get_ident()
        with self._mutex:
            if self._owner is None or self._owner == me:
                self._owner, self._depth = me, self._depth + 1
                return True
            return False


class Database:
    def __init__(self, url: str, timeouts: Timeouts = PATIENT, pool_size: int = 32) -> None:
        self.url = url
        self.engine = make_engine(url, timeouts, pool_size)
        self.dialect = self.engine.dialect.name
        self._writer = sessionmaker(
            bind=self.engine.execution_options(pesan_write=True), expire_on_commit=False
        )
        self._reader = sessionmaker(bind=self.engine, expire_on_commit=False)
        # Receives the durable events a transaction wrote, after it committed (the broker).
        self.publisher: Callable[[list[Any]], None] | None = None
        # Whether publishing waits on the network (Redis): then never on the event loop.
        self.publisher_blocks = False
        # SQLite has one writer at a time and its busy handler polls (every 100 ms at last),
        # so under a burst some writers starve past the busy timeout. This process's writers
        # queue here instead, in arrival order, each woken as soon as the one before them
        # ends; other processes still meet the busy timeout.
        self._write_turn = FairLock() if self.dialect == "sqlite" else None
        self._turn_timeout = _busy_seconds(timeouts)
        self._group: GroupWriter | None = None
        self._group_lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write transaction: commit on success, roll back on any exception."""
        callbacks: list[Callable[[], None]] = []
        with self._turn():
            yield from self._transaction(callbacks)
        # After the write turn is given back: publishing never delays the next writer.
        _run_callbacks(callbacks)

    @contextmanager
    def _turn(self) -> Iterator[None]:
        turn = self._write_turn
        if turn is None:
            yield
            return
        if not turn.acquire(timeout=self._turn_timeout):
            raise SATimeoutError(
                f"no turn to write to SQLite within {self._turn_timeout:g} s (busy)"
            )
        try:
            yield
        finally:
            turn.release()

    def _transaction(
        self, run_after: list[Callable[[], None]], bind: Connection | None = None
    ) -> Iterator[Session]:
        session = self._writer() if bind is None else self._writer(bind=bind)
        if self.publisher is not None:
            session.info["publish"] = self.publisher
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            callbacks = session.info.pop("after_commit", [])
            committed = session.info.pop("committed", False)
            session.close()
        if committed:
            run_after.extend(callbacks)

    @contextmanager
    def reader(self) -> Iterator[Session]:
        session = self._reader()
        try:
            yield session
        finally:
            session.rollback()
            session.close()

    async def write(self, work: Callable[[Session], T], *, orm: bool = True) -> T:
        """Run `work(session)` in a write transaction, from the event loop.

        On SQLite the work joins the group writer's queue: one thread runs the waiting jobs
        back to back in one transaction (group commit), each in its own savepoint, and
        answers each only once that transaction committed. Elsewhere it is an ordinary
        transaction on a worker thread. `orm=False` promises that `work` writes only with
        Core statements (no ORM objects): its savepoint is then a plain SQL one, which costs
        SQLite microseconds where the session's costs a compiled statement each way.
        """
        if self._write_turn is None:
            from starlette.concurrency import run_in_threadpool

            def alone() -> T:
                with self.transaction() as session:
                    return work(session)

            return await run_in_threadpool(alone)
        with self._group_lock:
            if self._group is None:
                self._group = GroupWriter(self)
        return await self._group.submit(work, orm)

    def dispose(self) -> None:
        if self._group is not None:
            self._group.stop()
            self._group = None
        self.engine.dispose()


# What a transaction's session buffers until it commits: the outbox's events
# (pesan.live.events) and the after-commit hooks.
_BUFFERS = ("pending_events", "after_commit")

# Run as a Core job's savepoint ends, inside it: the outbox writes the job's events here, so
# they are undone with the job if it fails (pesan.live.events registers itself).
BEFORE_RELEASE: list[Callable[[Session], None]] = []


@dataclass
class _Job:
    work: Callable[[Session], Any]
    orm: bool
    loop: asyncio.AbstractEventLoop
    future: "asyncio.Future[Any]"


class GroupWriter:
    """SQLite's writes, many jobs to a transaction (group commit), on the event loop itself.

    A job waits in its loop's line; the first one schedules a drain, which runs every job
    then waiting back to back in one transaction, each in its own savepoint, right on the
    loop: SQLite answers a small statement in microseconds, and handing each job to a thread
    and back cost more (two wake-ups and the interpreter lock passed both ways) than the
    job itself. The drain never waits, though. When another writer of this process holds
    the write turn, or another process holds SQLite's write lock (BEGIN IMMEDIATE refused
    at once: its connection's busy timeout is 0), the batch goes to this writer's thread,
    which waits its turn as any writer does, off the loop. That thread also checkpoints
    the WAL, which the loop's connection never does itself (a checkpoint waits on the disk).

    A job's savepoint keeps a failing job from taking the others with it: its writes and its
    buffered events are undone, and it alone gets the exception. If the commit fails, every
    job of the batch does. Nothing is answered before the commit, so an answer still means
    the write is stored.
    """

    MAX_BATCH = 64
    # How often, at most, the thread is asked to checkpoint the WAL the loop wrote.
    CHECKPOINT_SECONDS = 1.0

    def __init__(self, db: "Database") -> None:
        self.db = db
        self.jobs: queue.SimpleQueue[list[_Job] | Callable[[], None] | None] = queue.SimpleQueue()
        self._waiting: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        # The loop's own connection, opened on the first drain (None: not yet, or closed).
        self._connection: Connection | None = None
        self._inline = not in_memory(db.url)
        self._checkpoint_due = 0.0
        self.thread = threading.Thread(target=self._run, name="pesan-group-writer", daemon=True)
        self.thread.start()

    async def submit(self, work: Callable[[Session], T], orm: bool = True) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        waiting = self._waiting.setdefault(loop, [])
        waiting.append(_Job(work, orm, loop, future))
        if len(waiting) == 1:
            loop.call_soon(self._drain, loop)
        return await future

    def stop(self) -> None:
        self.jobs.put(None)
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._waiting.pop(loop, [])
        if not batch:
            return
        turn = self.db._write_turn
        if self._inline and turn is not None and turn.try_acquire():
            try:
                done = self._commit(batch, self._loop_connection())
            except Exception:  # the connection would not open: the thread answers the error
                log.exception("the event loop's SQLite connection failed")
                done = False
            finally:
                turn.release()
            if done:
                return
        self.jobs.put(batch)

    def _loop_connection(self) -> Connection:
        if self._connection is None:
            connection = self.db.engine.execution_options(pesan_write=True).connect()
            connection.connection.detach()  # its settings are its own: never back to the pool
            cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            cursor.execute("PRAGMA busy_timeout=0")
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.close()
            self._connection = connection
        return self._connection

    def _run(self) -> None:
        while True:
            item = self.jobs.get()
            if item is None:
                return
            if not isinstance(item, list):
                item()
                continue
            batch = item
            while len(batch) < self.MAX_BATCH:
                try:
                    more = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._commit(batch)
                    return
                if not isinstance(more, list):
                    more()
                    continue
                batch = batch + more
            self._commit(batch)

    def _commit(self, batch: list[_Job], on_loop: Connection | None = None) -> bool:
        """Runs the batch and answers its jobs. `on_loop`: the loop's connection, and False
        (nothing run, nothing answered) if SQLite's write lock is another process's."""
        outcomes: list[tuple[Any, BaseException | None]] = []
        callbacks: list[Callable[[], None]] = []
        transaction = (
            self.db.transaction()
            if on_loop is None
            else contextmanager(self.db._transaction)(callbacks, on_loop)
        )
        try:
            with transaction as session:
                try:
                    connection = session.connection()  # BEGIN IMMEDIATE
                except DBAPIError as exc:
                    if on_loop is not None and _is_busy(exc):
                        raise _Busy from exc
                    raise
                for job in batch:
                    outcomes.append(self._run_job(session, connection, job))
        except _Busy:
            return False
        except Exception as failed:
            outcomes = [(None, failed) for _ in batch]
        metrics.GROUP_COMMIT_JOBS.labels(where="thread" if on_loop is None else "loop").observe(
            len(batch)
        )
        if on_loop is not None:
            self._after_loop_commit(callbacks)
        for job, (value, error) in zip(batch, outcomes, strict=True):
            if on_loop is not None:
                _settle(job.future, value, error)
            elif not job.loop.is_closed():
                job.loop.call_soon_threadsafe(_settle, job.future, value, error)
        return True

    @staticmethod
    def _run_job(
        session: Session, connection: Connection, job: _Job
    ) -> tuple[Any, BaseException | None]:
        # What a failed job buffered (events, and the hooks to publish those it wrote before
        # its savepoint was undone) goes with it.
        marks = {key: len(session.info.setdefault(key, [])) for key in _BUFFERS}
        try:
            if job.orm:
                with session.begin_nested():  # its writes are flushed on leaving
                    value = job.work(session)
            else:
                value = _core_job(session, connection, job.work)
        except CoreJobMisuse:
            raise
        except Exception as exc:
            for key, mark in marks.items():
                del session.info.setdefault(key, [])[mark:]
            return None, exc
        finally:
            # Each job starts with an empty identity map: an object an earlier job loaded
            # may since have been changed by a Core statement.
            session.expunge_all()
        return value, None

    def _after_loop_commit(self, callbacks: list[Callable[[], None]]) -> None:
        """Publish what the batch wrote (on the loop, unless that waits on the network), and
        now and then have the thread checkpoint the WAL."""
        if callbacks:
            if self.db.publisher_blocks:
                self.jobs.put(lambda: _run_callbacks(callbacks))
            else:
                _run_callbacks(callbacks)
        now = time.monotonic()
        if now >= self._checkpoint_due:
            self._checkpoint_due = now + self.CHECKPOINT_SECONDS
            self.jobs.put(self._checkpoint)

    def _checkpoint(self) -> None:
        try:
            raw = self.db.engine.raw_connection()
            try:
                raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                raw.close()
        except Exception:  # the next one tries again; a checkpoint is never urgent
            log.exception("WAL checkpoint failed")


class _Busy(Exception):
    """SQLite's write lock is held by another process: the batch goes to the thread."""


def _is_busy(exc: DBAPIError) -> bool:
    return "locked" in str(exc.orig) or "busy" in str(exc.orig)


def in_memory(url: str) -> bool:
    """Whether a SQLite URL names an in-memory database (each connection its own)."""
    return make_url(url).database in (None, "", ":memory:")


def _run_callbacks(callbacks: list[Callable[[], None]]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:  # an after-commit hook must never undo a committed answer
            log.exception("after-commit hook failed")


class CoreJobMisuse(RuntimeError):
    """A job written with `orm=False` that changed ORM objects all the same."""


def _core_job(session: Session, connection: Connection, work: Callable[[Session], T]) -> T:
    """`work` in a plain SQL savepoint, with its events written before the savepoint ends.

    Only here may statements skip asking the session for its connection (`connection_of`):
    an ORM job's savepoint begins when the session is first asked, so a statement run
    before that would land outside it and outlive the job's failure.
    """
    cursor = connection.connection.cursor()
    session.info["connection"] = connection
    try:
        cursor.execute("SAVEPOINT pesan_job")
        try:
            value = work(session)
            if session.new or session.dirty or session.deleted:
                # A bug, and its objects would be flushed with the next job: the batch fails.
                raise CoreJobMisuse("a Core job (orm=False) changed ORM objects")
            for hook in BEFORE_RELEASE:
                hook(session)
        except BaseException:
            cursor.execute("ROLLBACK TO pesan_job")
            raise
        finally:
            cursor.execute("RELEASE pesan_job")
    finally:
        del session.info["connection"]
        cursor.close()
    return value


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


def connection_of(session: Session) -> Connection:
    """The session's connection: in a Core job of the group commit, the one it runs on (each
    ask of the session walks its transaction state: tens of microseconds); elsewhere, asked
    of the session, which also begins its savepoint if one is due."""
    connection = session.info.get("connection")
    return connection if connection is not None else session.connection()


class Prepared:
    """A Core statement that SQLite runs straight from its cursor.

    Compiled once; its values converted by the column types' own bind processors, for this
    dialect (dates, JSON, booleans: stored exactly as SQLAlchemy stores them, which
    tests/unit/test_prepared.py compares); its errors raised as
    SQLAlchemy's, so the error handlers see the same exceptions. SQLAlchemy spends ~50 us of
    Python on each execution (events, execution context, result set-up) where SQLite takes
    ~10 us to run a small statement, and a chat send runs seven under one writer thread.
    On other databases it is an ordinary `connection.execute`.
    """

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._plan: tuple[str, list[tuple[str, Callable[[Any], Any] | None, Any]]] | None = None
        self._converters: list[Callable[[Any], Any] | None] | None = None

    def rows(self, connection: Connection, params: dict[str, Any]) -> list[Any]:
        """The rows it answers (a SELECT, or RETURNING), a SELECT's values converted by its
        columns' types (a date comes back a datetime, as from SQLAlchemy)."""
        if connection.dialect.name != "sqlite":
            return list(connection.execute(self.statement, params).all())
        sql, values = self._bind(connection.dialect, params)
        rows = on_cursor(connection, sql, values, lambda c: c.execute(sql, values).fetchall())
        convert = self._results(connection.dialect)
        if not any(convert):
            return rows
        return [
            tuple(v if f is None else f(v) for f, v in zip(convert, row, strict=True))
            for row in rows
        ]

    def _results(self, dialect: Dialect) -> list[Callable[[Any], Any] | None]:
        if self._converters is None:
            columns = self.statement.selected_columns if isinstance(self.statement, Select) else ()
            self._converters = [
                c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
            ]
        return self._converters

    def run(self, connection: Connection, params: dict[str, Any]) -> None:
        if connection.dialect.name != "sqlite":
            connection.execute(self.statement, params)
            return
        sql, values = self._bind(connection.dialect, params)
        on_cursor(connection, sql, values, lambda c: c.execute(sql, values))

    def run_many(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if connection.dialect.name != "sqlite":
            connection.execute(self.statement, rows)
            return
        bound = [self._bind(connection.dialect, row)[1] for row in rows]
        assert self._plan is not None  # made by the first _bind
        sql = self._plan[0]
        on_cursor(connection, sql, bound, lambda c: c.executemany(sql, bound))

    def _bind(self, dialect: Dialect, params: dict[str, Any]) -> tuple[str, list[Any]]:
        if self._plan is None:
            compiled = cast(
                SQLCompiler, cast(ClauseElement, self.statement).compile(dialect=dialect)
            )
            assert compiled.positional and compiled.positiontup is not None
            binds = compiled.binds
            self._plan = (
                str(compiled),
                [
                    (
                        name,
                        _bind_processor(binds[name].type, dialect),
                        None if binds[name].required else binds[name].effective_value,
                    )
                    for name in compiled.positiontup
                ],
            )
        sql, plan = self._plan
        values = []
        for name, process, default in plan:
            value = params.get(name, default)
            values.append(process(value) if process is not None else value)
        return sql, values


def on_cursor(connection: Connection, sql: str, values: Any, work: Callable[[Any], Any]) -> Any:
    """`work(cursor)` on the connection's DBAPI cursor, past SQLAlchemy's execution path;
    DBAPI errors raised as SQLAlchemy's, so the outage and constraint handlers see them."""
    dbapi = connection.dialect.loaded_dbapi
    cursor = connection.connection.cursor()
    try:
        return work(cursor)
    except dbapi.Error as error:
        raise DBAPIError.instance(
            sql, values, error, dbapi.Error, dialect=connection.dialect
        ) from error
    finally:
        cursor.close()


def _bind_processor(type_: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """The column type's own bind processor; for a UTCDateTime on SQLite, the same
    conversion in one function (Book Now binds ~25 times, ~5 us each through three frames)."""
    if dialect.name == "sqlite" and isinstance(type_, UTCDateTime):
        return _sqlite_utc_text
    return type_.dialect_impl(dialect).bind_processor(dialect)


def _sqlite_utc_text(value: datetime | None) -> str | None:
    """What UTCDateTime stores on SQLite: the time in UTC (a naive one taken as UTC, as
    `as_utc` does), without its zone, in SQLite DATETIME's storage format
    (`2026-11-25 09:30:00.000000`, which `isoformat` writes the same way, year padded to
    four digits). tests/unit/test_prepared.py compares it with SQLAlchemy's processors."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


class PreparedClaim:
    """`INSERT ... ON CONFLICT (key) DO NOTHING RETURNING ...`, prepared for each dialect:
    the insert itself claims a unique key, so a new row costs one statement and a key
    already held (or being held by a concurrent writer, which this one waits for) writes
    nothing."""

    def __init__(self, table: Table, key: list[str]) -> None:
        first = table.c[key[0]]
        self._by_dialect = {
            name: Prepared(
                dialect.insert(table).on_conflict_do_nothing(index_elements=key).returning(first)
            )
            for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
        }

    def claim(self, connection: Connection, row: dict[str, Any]) -> bool:
        """True if `row` was inserted; False if its key was taken (nothing written)."""
        return bool(self._by_dialect[connection.dialect.name].rows(connection, row))


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
