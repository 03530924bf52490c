"""The server's database sessions have time limits and run in UTC, whatever the database's
own defaults (the test databases default to Asia/Makassar) or the URL's options say."""

import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from pesan.db import PATIENT, Database, Timeouts
from pesan.errors import is_database_outage

SERVER = Timeouts(statement=1.5, lock=0.5, connect=2, pool=2)


def test_postgresql_sessions_have_limits_and_utc(database_url_factory: Any) -> None:
    url = database_url_factory("postgresql").replace("postgresql://", "postgresql+psycopg://")
    own = f"{url}?options=-c%20application_name%3Dpesan-test"
    db = Database(own, SERVER)
    try:
        with db.engine.connect() as conn:
            assert conn.execute(text("SHOW TimeZone")).scalar() == "UTC"
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "1500ms"
            assert conn.execute(text("SHOW lock_timeout")).scalar() == "500ms"
            # The URL's own options are kept.
            assert conn.execute(text("SHOW application_name")).scalar() == "pesan-test"
            started = time.monotonic()
            with pytest.raises(OperationalError, match="statement timeout") as cancelled:
                conn.execute(text("SELECT pg_sleep(10)"))
            assert time.monotonic() - started < 8
            assert is_database_outage(cancelled.value)
    finally:
        db.dispose()


def test_commands_an_operator_runs_have_no_statement_limit(database_url_factory: Any) -> None:
    url = database_url_factory("postgresql").replace("postgresql://", "postgresql+psycopg://")
    db = Database(url, PATIENT)
    try:
        with db.engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "0"
            assert conn.execute(text("SHOW lock_timeout")).scalar() == "0"
            assert conn.execute(text("SHOW TimeZone")).scalar() == "UTC"
    finally:
        db.dispose()


def test_sqlite_waits_for_its_writer_only_as_long_as_the_lock_timeout(
    database_url_factory: Any,
) -> None:
    db = Database(database_url_factory("sqlite"), SERVER)
    try:
        with db.engine.connect() as conn:
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 500
    finally:
        db.dispose()
