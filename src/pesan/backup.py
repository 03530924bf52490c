"""Backups while the server runs, and restoring one into an empty database.

- SQLite: the online backup API copies a consistent snapshot page by page, while the server
  goes on writing (WAL mode); the copy is itself an SQLite file.
- PostgreSQL: `pg_dump --format=custom` (one consistent snapshot, the server keeps running)
  and `pg_restore`. If the tools are not installed, the command to run is printed instead.
"""

import shutil
import sqlite3
import subprocess
from contextlib import closing
from dataclasses import dataclass
from glob import glob
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from pesan.db import Database


class BackupError(Exception):
    """Something an operator must fix, with the fix in the message."""


@dataclass
class Outcome:
    done: bool
    message: str


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory database has nothing to back up")
    return Path(database)


def _libpq_url(url: str, *, hide_password: bool = False) -> str:
    """The URL pg_dump and pg_restore understand (no SQLAlchemy driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=hide_password)


def _tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def backup(url: str, target: Path) -> Outcome:
    if target.exists():
        raise BackupError(f"{target} exists already; choose a new file (backups never overwrite)")
    target.parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        source = _sqlite_path(url)
        if not source.exists():
            raise BackupError(f"no database at {source}")
        with (
            closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src,
            closing(sqlite3.connect(target)) as dst,
        ):
            src.backup(dst)
        return Outcome(True, f"backup written to {target} ({target.stat().st_size} bytes)")
    command = ["pg_dump", "--format=custom", "--no-owner", "--file", str(target)]
    return _run(command, url, f"backup written to {target}")


def restore(db: Database, source: Path) -> Outcome:
    """Restore `source` into `db`, which must be empty (no tables): never over live data."""
    if not source.exists():
        raise BackupError(f"no backup at {source}")
    with db.engine.connect() as conn:
        tables = inspect(conn).get_table_names()
    if tables:
        raise BackupError(
            f"the database is not empty ({len(tables)} tables); restore into a new, empty one "
            "and point PESAN_DATABASE_URL at it"
        )
    if db.url.startswith("sqlite"):
        target = _sqlite_path(db.url)
        db.dispose()
        with (
            closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src,
            closing(sqlite3.connect(target)) as dst,
        ):
            src.backup(dst)
        return Outcome(True, f"restored {source} into {target}")
    command = ["pg_restore", "--no-owner", "--exit-on-error", "--single-transaction"]
    return _run([*command, str(source), "--dbname"], db.url, f"restored {source}")


def _run(command: list[str], url: str, done: str) -> Outcome:
    """Run a PostgreSQL tool with the database URL last; print the command if it is missing."""
    tool = _tool(command[0])
    if tool is None:
        shown = " ".join([*command, f"'{_libpq_url(url, hide_password=True)}'"])
        return Outcome(False, f"{command[0]} is not installed here; run: {shown}")
    finished = subprocess.run([tool, *command[1:], _libpq_url(url)], capture_output=True, text=True)
    if finished.returncode != 0:
        raise BackupError(f"{command[0]} failed: {finished.stderr.strip()[:500]}")
    return Outcome(True, done)
