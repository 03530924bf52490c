"""Parsed weekly hours are cached by their stored value: a changed schedule is seen at once,
and no caller can change what another one reads."""

from datetime import UTC, datetime, timedelta

import pytest

from pesan.providers.schedule import WEEKDAYS, Schedule, ScheduleProblem

MONDAY = datetime(2026, 11, 30, tzinfo=UTC)  # Asia/Makassar is UTC+8, no DST


def schedule(weekly_hours: dict[str, list[list[str]]]) -> Schedule:
    return Schedule.from_stored("Asia/Makassar", weekly_hours, [], slot_step_minutes=60)


def starts(s: Schedule) -> list[int]:
    """Monday's local start hours of a one-hour booking."""
    day = MONDAY - timedelta(hours=8)
    found = s.slot_starts(timedelta(hours=1), day, day + timedelta(days=1))
    return [(t + timedelta(hours=8)).hour for t in found]


def test_a_changed_schedule_is_seen_at_once() -> None:
    hours = {day: [["09:00", "12:00"]] for day in WEEKDAYS}
    assert starts(schedule(hours)) == [9, 10, 11]
    hours["mon"] = [["13:00", "15:00"]]  # the same dict, changed: a new stored value
    assert starts(schedule(hours)) == [13, 14]
    hours["mon"] = [["09:00", "12:00"]]
    assert starts(schedule(hours)) == [9, 10, 11]


def test_equal_schedules_share_a_parse_that_cannot_be_changed() -> None:
    first = schedule({"mon": [["09:00", "12:00"]]})
    second = schedule({"mon": [["09:00", "12:00"]]})
    assert first.weekly == second.weekly
    assert first.weekly["mon"] == ((9 * 60, 12 * 60),)
    assert first.weekly["tue"] == ()  # a day not stored has no hours
    with pytest.raises(TypeError):
        first.weekly["mon"] = ()  # type: ignore[index]


def test_bad_stored_hours_fail_every_time() -> None:
    for _ in range(2):  # a failure is not cached as an answer
        with pytest.raises(ScheduleProblem):
            schedule({"mon": [["12:00", "09:00"]]})
