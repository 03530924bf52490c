"""SQLite writers of one process take turns in order instead of polling SQLite's lock, and a
writer that cannot get its turn in time gives up (503) instead of hanging."""

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import TimeoutError as SATimeoutError

from pesan.db import Database, Timeouts
from pesan.errors import is_database_outage


def make_db(tmp_path: Path, lock: float) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'w.sqlite3'}", Timeouts(lock=lock, pool=5))
    with db.transaction() as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS t (n INTEGER)"))
    return db


def test_a_burst_of_writers_all_get_their_turn(tmp_path: Path) -> None:
    db = make_db(tmp_path, lock=5)
    failures: list[BaseException] = []

    def write(n: int) -> None:
        try:
            with db.transaction() as session:
                session.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
                time.sleep(0.01)  # the lock is held a while, as by a real use case
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    with db.reader() as session:
        assert session.scalar(text("SELECT count(*) FROM t")) == 40
    assert failures == []
    db.dispose()


def test_a_writer_that_gets_no_turn_in_time_is_an_outage(tmp_path: Path) -> None:
    db = make_db(tmp_path, lock=0.5)
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with db.transaction() as session:
            session.execute(text("INSERT INTO t VALUES (1)"))
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    started = time.monotonic()
    with (
        pytest.raises(SATimeoutError, match="no turn to write") as waited,
        db.transaction() as session,
    ):
        session.execute(text("INSERT INTO t VALUES (2)"))
    assert 0.4 < time.monotonic() - started < 10  # waited its turn, then gave up
    assert is_database_outage(waited.value)
    release.set()
    holder.join(10)
    db.dispose()
