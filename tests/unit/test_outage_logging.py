"""An expected outage is one log line naming it, never a traceback (periodic jobs too)."""

import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import OperationalError

from pesan import scheduled
from pesan.config import Settings
from pesan.errors import is_database_outage, outage_summary


def refused(*_: object) -> int:
    raise OperationalError("SELECT 1", {}, Exception("connection refused\nsecond line"))


def test_a_job_meeting_an_outage_logs_one_line(caplog: pytest.LogCaptureFixture) -> None:
    job = scheduled.Job("prune-events", lambda s: 1.0, refused)
    with caplog.at_level(logging.WARNING, logger="pesan.scheduled"):
        done = scheduled.run_job(job, None, datetime.now(UTC), Settings())  # type: ignore[arg-type]
    assert done == 0
    [record] = caplog.records
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "prune-events" in record.getMessage()
    assert "connection refused" in record.getMessage()
    assert "second line" not in record.getMessage()


def test_constraint_errors_are_not_outages() -> None:
    from sqlalchemy.exc import IntegrityError

    assert not is_database_outage(IntegrityError("INSERT", {}, Exception("unique")))
    outage = OperationalError("SELECT", {}, Exception("database is locked"))
    assert is_database_outage(outage)
    assert outage_summary(outage) == "Exception: database is locked"
