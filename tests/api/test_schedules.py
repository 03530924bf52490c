"""Working hours, availability and no double booking, through the API, at times the test sets."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.conftest import Account, Api, FakeClock, parse_time
from tests.problems import assert_problem, error_fields

WITA = ZoneInfo("Asia/Makassar")
# Monday 1 March 2027, 00:00 UTC = 08:00 WITA.
MONDAY = datetime(2027, 3, 1, 0, 0, tzinfo=UTC)


@pytest.fixture
def monday(clock: FakeClock) -> FakeClock:
    clock.at = MONDAY
    return clock


@pytest.fixture
def therapist(api: Api) -> Account:
    return api.provider("therapist")


def local(value: datetime, zone: ZoneInfo = WITA) -> str:
    return value.astimezone(zone).strftime("%a %H:%M")


def book(client: TestClient, who: Account, provider: Account, start: datetime | str) -> Any:
    when = start if isinstance(start, str) else start.isoformat()
    return client.post(
        "/api/v1/bookings",
        headers=who.headers,
        json={
            "providerId": provider.id,
            "serviceId": provider.service_ids[0],
            "mode": "scheduled",
            "startAt": when,
            "location": {"kind": "villa", "room": "7"},
        },
    )


# ---- the schedule itself ---------------------------------------------------------------------


def test_a_new_profile_is_open_09_to_21_every_day(
    api: Api, client: TestClient, therapist: Account
) -> None:
    r = client.get(f"/api/v1/providers/{therapist.id}/schedule")
    assert r.status_code == 200, r.text
    schedule = r.json()
    assert schedule["timezone"] == "Asia/Makassar"
    assert set(schedule["weeklyHours"]) == {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
    for intervals in schedule["weeklyHours"].values():
        assert intervals == [{"opens": "09:00", "closes": "21:00"}]
    assert schedule["daysOff"] == []
    assert (schedule["bufferBeforeMinutes"], schedule["bufferAfterMinutes"]) == (0, 15)
    assert (schedule["minNoticeMinutes"], schedule["horizonDays"]) == (60, 30)
    assert schedule["slotStepMinutes"] == 15


def test_the_default_day_offers_starts_that_end_by_21_00(
    api: Api, monday: FakeClock, therapist: Account
) -> None:
    starts = api.availability(therapist, MONDAY, MONDAY + timedelta(days=1))
    # 60 minutes' notice from 08:00; a 90-minute treatment ends by 21:00; a start every 15.
    assert local(starts[0]) == "Mon 09:00"
    assert local(starts[-1]) == "Mon 19:30"
    assert len(starts) == 43
    assert all(b - a == timedelta(minutes=15) for a, b in pairwise(starts))


def test_breaks_and_days_off_are_respected(api: Api, monday: FakeClock, therapist: Account) -> None:
    api.schedule(
        therapist,
        weekly={"mon": [["09:00", "12:00"], ["13:00", "18:00"]], "tue": [["09:00", "18:00"]]},
        daysOff=["2027-03-02"],
        minNoticeMinutes=0,
    )
    starts = [local(s) for s in api.availability(therapist, MONDAY, MONDAY + timedelta(days=3))]
    assert starts[:3] == ["Mon 09:00", "Mon 09:15", "Mon 09:30"]
    assert "Mon 10:30" in starts and "Mon 10:45" not in starts  # would run into the break
    assert "Mon 13:00" in starts and "Mon 16:30" in starts and "Mon 16:45" not in starts
    assert not [s for s in starts if s.startswith("Tue")]  # a day off
    assert not [s for s in starts if s.startswith("Wed")]  # closed


def test_a_booking_holds_its_time_and_the_buffer_after(
    api: Api, client: TestClient, monday: FakeClock, therapist: Account
) -> None:
    customer = api.register("customer")
    ten = datetime(2027, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 WITA
    r = book(client, customer, therapist, ten)
    assert r.status_code == 201, r.text
    starts = [local(s) for s in api.availability(therapist, MONDAY, MONDAY + timedelta(days=1))]
    assert "Mon 09:00" not in starts  # 09:00 + 90 min + 15 min buffer runs into 10:00
    assert "Mon 11:30" not in starts  # the buffer after the booking
    assert starts[0] == "Mon 11:45"


def test_the_schedule_is_the_providers_own(api: Api, client: TestClient) -> None:
    customer = api.register("customer")
    r = client.put(
        "/api/v1/providers/me/schedule", headers=customer.headers, json={"weeklyHours": {}}
    )
    assert_problem(r, 403, "role_not_allowed")


@pytest.mark.parametrize(
    ("mon", "field"),
    [
        ([{"opens": "09:00", "closes": "12:00"}, {"opens": "11:00", "closes": "14:00"}], "mon"),
        ([{"opens": "12:00", "closes": "09:00"}], "mon[0]"),
        ([{"opens": "09:00", "closes": "24:30"}], "mon[0]"),
        ([{"opens": "9:00", "closes": "12:00"}], "mon.0.opens"),
    ],
    ids=["overlap", "backwards", "past-midnight", "not-hh-mm"],
)
def test_hours_that_make_no_sense_are_refused(
    api: Api, client: TestClient, therapist: Account, mon: list[Any], field: str
) -> None:
    before = client.get(f"/api/v1/providers/{therapist.id}/schedule").json()
    r = client.put(
        "/api/v1/providers/me/schedule",
        headers=therapist.headers,
        json={"weeklyHours": {"mon": mon}},
    )
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == [f"weeklyHours.{field}"]
    assert client.get(f"/api/v1/providers/{therapist.id}/schedule").json() == before


def test_availability_needs_a_service_of_the_provider_and_a_sane_window(
    api: Api, client: TestClient, therapist: Account
) -> None:
    other = api.provider("therapist")
    url = f"/api/v1/providers/{therapist.id}/availability"
    r = client.get(url, params={"serviceId": other.service_ids[0]})
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == ["serviceId"]
    start = datetime.now(UTC)
    for end, field in [(start, "to"), (start + timedelta(days=32), "to")]:
        r = client.get(
            url,
            params={
                "serviceId": therapist.service_ids[0],
                "from": start.isoformat(),
                "to": end.isoformat(),
            },
        )
        assert_problem(r, 422, "validation_failed")
        assert error_fields(r) == [field]
    assert_problem(
        client.get(
            "/api/v1/providers/01JAAAAAAAAAAAAAAAAAAAAAAA/availability",
            params={"serviceId": therapist.service_ids[0]},
        ),
        404,
        "not_found",
    )


# ---- Book Now keeps to the schedule ------------------------------------------------------------


@pytest.mark.parametrize(
    ("wita", "why"),
    [
        ("2027-03-01T08:30:00+08:00", "needs more notice"),  # 30 minutes away
        ("2027-03-01T10:07:00+08:00", "does not start a booking at that time"),  # off the steps
        ("2027-03-01T20:00:00+08:00", "does not start a booking at that time"),  # ends 21:30
        ("2027-04-15T10:00:00+08:00", "does not take bookings that far ahead"),  # 45 days
    ],
    ids=["too-soon", "off-step", "past-closing", "beyond-horizon"],
)
def test_book_now_refuses_a_time_availability_does_not_offer(
    api: Api,
    app: FastAPI,
    client: TestClient,
    monday: FakeClock,
    therapist: Account,
    wita: str,
    why: str,
) -> None:
    customer = api.register("customer")
    r = book(client, customer, therapist, wita)
    body = assert_problem(r, 409, "slot_unavailable")
    assert why in body["detail"]
    assert body["freeStartTimes"], "the nearest free times come with the refusal"
    offered = set(api.availability(therapist, MONDAY, MONDAY + timedelta(days=31)))
    assert {parse_time(t) for t in body["freeStartTimes"]} <= offered
    with app.state.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM bookings")).scalar_one() == 0


def test_a_taken_time_answers_the_nearest_free_times(
    api: Api, client: TestClient, monday: FakeClock, therapist: Account
) -> None:
    first, second = api.register("customer"), api.register("hotel")
    ten = "2027-03-01T10:00:00+08:00"
    assert book(client, first, therapist, ten).status_code == 201
    r = book(client, second, therapist, "2027-03-01T10:30:00+08:00")
    body = assert_problem(r, 409, "slot_unavailable")
    free = [local(parse_time(t)) for t in body["freeStartTimes"]]
    assert free == ["Mon 11:45", "Mon 12:00", "Mon 12:15", "Mon 12:30", "Mon 12:45"]
    assert book(client, second, therapist, body["freeStartTimes"][0]).status_code == 201


# ---- no double booking, under concurrency -----------------------------------------------------


def test_a_hundred_customers_racing_for_one_start_get_one_booking(
    api: Api, app: FastAPI, client: TestClient, therapist: Account
) -> None:
    customers = [api.register("customer") for _ in range(100)]
    start = api.slot(therapist, days=2)

    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(lambda c: book(client, c, therapist, start), customers))

    codes = sorted(r.status_code for r in answers)
    assert codes == [201] + [409] * 99, {r.status_code: r.text for r in answers}
    assert {r.json()["code"] for r in answers if r.status_code == 409} == {"slot_unavailable"}
    with app.state.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM bookings")).scalar_one() == 1


def test_customers_racing_for_different_times_all_get_theirs(
    api: Api, app: FastAPI, client: TestClient, therapist: Account
) -> None:
    customers = [api.register("customer") for _ in range(10)]
    starts = api.slots(therapist, 10, days=2)

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(
            pool.map(
                lambda pair: book(client, pair[0], therapist, pair[1]),
                zip(customers, starts, strict=True),
            )
        )
    assert [r.status_code for r in answers] == [201] * 10, [r.text for r in answers]


@pytest.mark.backend_only("postgresql")
def test_postgresql_itself_refuses_overlapping_held_bookings(
    api: Api, app: FastAPI, client: TestClient, therapist: Account
) -> None:
    """Even a writer that skips Book Now's checks cannot make a provider hold two bookings at
    once there: the exclusion constraint refuses the second row (SQLite has no such
    constraint; its writers are serialised and Book Now checks inside the write)."""
    customer = api.register("customer")
    booked = book(client, customer, therapist, api.slot(therapist, days=2)).json()["booking"]
    with pytest.raises(IntegrityError) as refused, app.state.db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO bookings SELECT 'X' || substr(id, 2), status, mode, customer_id, "
                "customer_name, booker_role, provider_id, provider_name, service_id, "
                "service_name, duration_minutes, start_at + interval '30 minutes', "
                "end_at + interval '30 minutes', location_kind, location_address, location_room, "
                "note, guest_name, price_amount, currency, eta_at, status_reason, conversation_id, "
                "created_at, updated_at, timezone, blocked_from + interval '30 minutes', "
                "blocked_until + interval '30 minutes', respond_by, reminded_at, ended_by, "
                "late_cancellation, counts_against FROM bookings WHERE id = :id"
            ),
            {"id": booked["id"]},
        )
    assert "ex_bookings_no_overlap" in str(refused.value)


# ---- zones with daylight saving time -----------------------------------------------------------


def test_a_day_when_clocks_change_has_neither_phantom_nor_missing_starts(
    api: Api, client: TestClient, clock: FakeClock
) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    provider = api.provider("therapist", area="Berlin")
    r = client.put(
        "/api/v1/providers/me",
        headers=provider.headers,
        json={"timezone": "Europe/Berlin", "area": "Berlin"},
    )
    assert r.status_code == 200, r.text
    api.schedule(
        provider,
        weekly={d: [["00:00", "24:00"]] for d in ("sat", "sun", "mon")},
        slotStepMinutes=60,
        minNoticeMinutes=0,
        bufferAfterMinutes=0,
    )
    clock.at = datetime(2027, 3, 27, 12, 0, tzinfo=UTC)
    # Sunday 28 March 2027: 02:00 does not exist in Berlin; the day has 23 hours.
    day = datetime(2027, 3, 28, tzinfo=berlin)
    starts = api.availability(provider, day, day + timedelta(days=1))
    hours = [s.astimezone(berlin).strftime("%H:%M") for s in starts]
    assert hours == ["00:00", "01:00", *(f"{h:02d}:00" for h in range(3, 24))]
    assert len(starts) == len(set(starts)) == 23
    # and Book Now takes one after the change
    customer = api.register("customer")
    three = datetime(2027, 3, 28, 3, 0, tzinfo=berlin)
    assert three in starts
    assert book(client, customer, provider, three).status_code == 201
