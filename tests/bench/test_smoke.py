"""Every benchmark under bench/ runs in a short smoke mode: it must finish without errors
(no 5xx, no lost or duplicated message, no gap in the events). Timing never fails a test:
the figures are for people, in bench/results/ and docs/performance.md."""

import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import IN_CI, PG_ADMIN_URL, unavailable

pytestmark = pytest.mark.slow
BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_smoke(script: str, *args: str) -> None:
    if script != "message_history.py" and shutil.which("wrk") is None:
        if IN_CI:
            pytest.fail("wrk is required in CI (scripts/test installs it)")
        pytest.skip("wrk not installed")
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--smoke", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=BENCH,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def need_postgresql() -> None:
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=5).close()
    except Exception as exc:
        unavailable("PostgreSQL", exc)


def test_send_sqlite() -> None:
    run_smoke("send.py")


def test_send_postgresql_one_and_two_processes() -> None:
    need_postgresql()
    run_smoke("send.py", "--db", "postgresql")


def test_signin_flood() -> None:
    run_smoke("signin_flood.py")


def test_reads() -> None:
    run_smoke("reads.py")


def test_live() -> None:
    run_smoke("live.py")


def test_booknow() -> None:
    run_smoke("booknow.py")
