"""Availability never offers a time that Book Now then refuses, and never hides a time that Book
Now would take: random schedules in zones with and without daylight saving, random bookings
already held, random times asked for."""

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import Account, Api, FakeClock

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ZONES = ("Asia/Makassar", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe")
# Mornings a few days before clocks change in one of the zones (and one with no change).
STARTS = (
    datetime(2027, 3, 12, 6, 0, tzinfo=UTC),
    datetime(2027, 3, 26, 6, 0, tzinfo=UTC),
    datetime(2027, 4, 2, 6, 0, tzinfo=UTC),
    datetime(2027, 10, 29, 6, 0, tzinfo=UTC),
    datetime(2027, 6, 1, 6, 0, tzinfo=UTC),
)


@st.composite
def day_hours(draw: st.DrawFn) -> list[list[str]]:
    """0 to 2 intervals on the half hour, in order, not overlapping."""
    marks = sorted(draw(st.sets(st.integers(0, 48), max_size=4)))
    if len(marks) % 2:
        marks = marks[:-1]
    return [
        [f"{a // 2:02d}:{a % 2 * 30:02d}", f"{b // 2:02d}:{b % 2 * 30:02d}"]
        for a, b in zip(marks[::2], marks[1::2], strict=True)
        if a < b
    ]


def book(api: Api, who: Account, provider: Account, start: datetime) -> Any:
    return api.client.post(
        "/api/v1/bookings",
        headers=who.headers,
        json={
            "providerId": provider.id,
            "serviceId": provider.service_ids[0],
            "mode": "scheduled",
            "startAt": start.isoformat(),
            "location": {"kind": "home", "address": "Jl. Bisma 3"},
        },
    )


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_availability_offers_exactly_what_book_now_takes(
    api: Api, clock: FakeClock, data: st.DataObject
) -> None:
    clock.at = data.draw(st.sampled_from(STARTS), label="now")
    zone = data.draw(st.sampled_from(ZONES), label="zone")
    provider = api.provider("therapist")
    r = api.client.put("/api/v1/providers/me", headers=provider.headers, json={"timezone": zone})
    assert r.status_code == 200, r.text
    horizon = data.draw(st.integers(1, 4), label="horizon")
    api.schedule(
        provider,
        weekly={day: data.draw(day_hours(), label=day) for day in DAYS},
        daysOff=data.draw(
            st.lists(
                st.sampled_from(
                    [(clock.at + timedelta(days=d)).date().isoformat() for d in range(4)]
                ),
                max_size=1,
            ),
            label="days off",
        ),
        slotStepMinutes=data.draw(st.sampled_from([15, 30, 45, 60]), label="step"),
        minNoticeMinutes=data.draw(st.sampled_from([0, 60, 180]), label="notice"),
        bufferBeforeMinutes=data.draw(st.sampled_from([0, 15]), label="before"),
        bufferAfterMinutes=data.draw(st.sampled_from([0, 15, 30]), label="after"),
        horizonDays=horizon,
    )
    window = (clock.at, clock.at + timedelta(days=horizon + 1))
    customer = api.register("customer")

    # Some times already held by other bookings.
    offered = api.availability(provider, *window)
    for start in (
        data.draw(st.lists(st.sampled_from(offered), max_size=3), label="held") if offered else []
    ):
        book(api, api.register("hotel"), provider, start)  # 201, or 409 if an earlier one holds it
    offered_now = set(api.availability(provider, *window))

    # Ask for times the availability offered, and any others, on a five-minute grid.
    span = int((window[1] - window[0]) / timedelta(minutes=5))
    asked = data.draw(
        st.lists(
            st.integers(1, span).map(lambda n: clock.at + timedelta(minutes=5 * n)),
            min_size=3,
            max_size=6,
        ),
        label="asked",
    )
    if offered_now:
        asked += data.draw(
            st.lists(st.sampled_from(sorted(offered_now)), max_size=3), label="offered"
        )
    event(f"times offered: {'some' if offered_now else 'none'}")
    for start in asked:
        r = book(api, customer, provider, start)
        event(f"asked: {'offered' if start in offered_now else 'not offered'}")
        if start in offered_now:
            assert r.status_code == 201, (start, r.text)
            cancelled = api.act(customer, r.json()["booking"]["id"], "cancel")
            assert cancelled.status_code == 200, cancelled.text
        else:
            assert r.status_code == 409, (start, r.text)
            assert r.json()["code"] == "slot_unavailable"
