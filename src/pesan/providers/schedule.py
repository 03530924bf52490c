"""A provider's schedule and the free start times it gives: pure functions over plain data.

Weekly hours are wall-clock intervals per weekday in the provider's IANA zone ("09:00" to
"12:00" and "13:00" to "21:00" is a day with a lunch break); days off are local dates. A
`scheduled` booking may start at an interval's opening time plus a multiple of the slot step,
and must end inside the hours (an interval that closes at "24:00" continues into the next
day's "00:00"). Everything is computed in absolute time from the zone's rules, so days when
clocks change have neither phantom nor missing slots.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from itertools import pairwise
from types import MappingProxyType
from zoneinfo import ZoneInfo

import orjson

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES = 24 * 60
MAX_INTERVALS_PER_DAY = 6

Interval = tuple[datetime, datetime]  # [from, until), absolute, timezone-aware


def default_hours() -> dict[str, list[list[str]]]:
    """09:00 to 21:00 every day: a new profile is bookable on day one."""
    return {day: [["09:00", "21:00"]] for day in WEEKDAYS}


class ScheduleProblem(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def parse_clock(value: str) -> int:
    """Minutes since midnight from "HH:MM" (00:00 to 24:00)."""
    hours, sep, minutes = value.partition(":")
    if not (
        sep and len(hours) == 2 and len(minutes) == 2 and hours.isdigit() and minutes.isdigit()
    ):
        raise ValueError(f"{value!r} is not a time like 09:30")
    total = int(hours) * 60 + int(minutes)
    if int(minutes) >= 60 or total > DAY_MINUTES:
        raise ValueError(f"{value!r} is not a time between 00:00 and 24:00")
    return total


def format_clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_day(intervals: Sequence[Sequence[str]], field: str) -> list[tuple[int, int]]:
    """One weekday's intervals, as minutes, sorted; refuses overlaps and empty intervals."""
    if len(intervals) > MAX_INTERVALS_PER_DAY:
        raise ScheduleProblem(field, f"at most {MAX_INTERVALS_PER_DAY} intervals a day")
    parsed = []
    for i, pair in enumerate(intervals):
        try:
            opens, closes = parse_clock(pair[0]), parse_clock(pair[1])
        except (ValueError, IndexError) as exc:
            raise ScheduleProblem(f"{field}[{i}]", str(exc)) from None
        if opens >= closes:
            raise ScheduleProblem(f"{field}[{i}]", "opens must be before closes")
        parsed.append((opens, closes))
    parsed.sort()
    for (_, closes), (opens, _) in pairwise(parsed):
        if opens < closes:
            raise ScheduleProblem(field, "intervals overlap")
    return parsed


@dataclass(frozen=True)
class Schedule:
    zone: str
    weekly: Mapping[str, Sequence[tuple[int, int]]]  # weekday -> [(opens, closes)] in minutes
    days_off: frozenset[date] = frozenset()
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 15
    min_notice_minutes: int = 60
    horizon_days: int = 30
    slot_step_minutes: int = 15

    @classmethod
    def from_stored(
        cls,
        zone: str,
        weekly_hours: dict[str, list[list[str]]],
        days_off: Iterable[str],
        **settings: int,
    ) -> "Schedule":
        return cls(
            zone=zone,
            weekly=_parsed_week(orjson.dumps(weekly_hours)),
            days_off=frozenset(date.fromisoformat(d) for d in days_off),
            **settings,
        )

    def hold(self, start: datetime, end: datetime) -> Interval:
        """The provider's time a booking from `start` to `end` holds: with the buffers."""
        return (
            start - timedelta(minutes=self.buffer_before_minutes),
            end + timedelta(minutes=self.buffer_after_minutes),
        )

    def open_intervals(self, start: datetime, end: datetime) -> list[Interval]:
        """The opening hours that touch [start, end), absolute, sorted, in UTC."""
        zone = ZoneInfo(self.zone)
        first = start.astimezone(zone).date() - timedelta(days=1)
        last = end.astimezone(zone).date() + timedelta(days=1)
        out = []
        day = first
        while day <= last:
            if day not in self.days_off:
                for opens, closes in self.weekly[WEEKDAYS[day.weekday()]]:
                    begin, finish = _instant(day, opens, zone), _instant(day, closes, zone)
                    if begin < finish and begin < end and finish > start:
                        out.append((begin, finish))
            day += timedelta(days=1)
        return sorted(out)

    def slot_starts(self, duration: timedelta, start: datetime, end: datetime) -> list[datetime]:
        """Every start in [start, end) that the hours allow, before notice and bookings."""
        step = timedelta(minutes=self.slot_step_minutes)
        intervals = self.open_intervals(start - duration, end + duration)
        out = set()
        for begin, finish in intervals:
            at = begin
            if at < start:  # jump to the first step at or after `start`
                at += step * -((begin - start) // step)
            while at < finish and at < end:
                if _covered(intervals, at, at + duration):
                    out.add(at)
                at += step
        return sorted(out)


@lru_cache(maxsize=1024)
def _parsed_week(stored: bytes) -> Mapping[str, Sequence[tuple[int, int]]]:
    """Stored weekly hours, parsed: Book Now reads them on every booking, and parsing them
    cost more than the rest of its schedule check. Keyed on the stored value itself (as
    JSON), so a provider's changed hours are a new key, seen at once. The schedules that
    share a key share the answer: it is read-only."""
    weekly_hours = orjson.loads(stored)
    return MappingProxyType(
        {day: tuple(parse_day(weekly_hours.get(day, []), day)) for day in WEEKDAYS}
    )


def _instant(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """The absolute time of a wall-clock minute of a local day (24:00 is the next midnight)."""
    if minutes == DAY_MINUTES:
        local = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    else:
        local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=zone)
    return local.astimezone(UTC)


def _covered(intervals: Sequence[Interval], start: datetime, end: datetime) -> bool:
    """[start, end) lies inside the union of the sorted `intervals`."""
    reached = start
    for begin, finish in intervals:
        if begin > reached:
            if finish > reached:
                return False
            continue
        reached = max(reached, finish)
        if reached >= end:
            return True
    return reached >= end


def overlaps(a: Interval, b: Interval) -> bool:
    return a[0] < b[1] and b[0] < a[1]


class Refusal(StrEnum):
    """Why a `scheduled` start is not offered (and Book Now refuses it)."""

    too_soon = "too_soon"
    too_far = "too_far"
    outside_hours = "outside_hours"
    taken = "taken"


def refusal(
    schedule: Schedule,
    held: Sequence[Interval],
    duration: timedelta,
    start: datetime,
    now: datetime,
) -> Refusal | None:
    """Why `start` cannot be booked for `duration`, or None: the one rule both availability and
    Book Now apply. `held` are the times the provider's other bookings hold."""
    # A scheduled start is in the future (the contract), even with no notice asked.
    if start <= now or start < now + timedelta(minutes=schedule.min_notice_minutes):
        return Refusal.too_soon
    if start >= now + timedelta(days=schedule.horizon_days):
        return Refusal.too_far
    if start not in schedule.slot_starts(duration, start, start + timedelta(microseconds=1)):
        return Refusal.outside_hours
    hold = schedule.hold(start, start + duration)
    if any(overlaps(hold, other) for other in held):
        return Refusal.taken
    return None


def free_starts(
    schedule: Schedule,
    held: Sequence[Interval],
    duration: timedelta,
    start: datetime,
    end: datetime,
    now: datetime,
) -> list[datetime]:
    """Every start in [start, end) that `refusal` lets through."""
    earliest = now + timedelta(minutes=schedule.min_notice_minutes)
    latest = now + timedelta(days=schedule.horizon_days)
    candidates = schedule.slot_starts(duration, max(start, earliest), min(end, latest))
    return [s for s in candidates if refusal(schedule, held, duration, s, now) is None]
