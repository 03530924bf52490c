"""Answer windows: a request the provider does not answer in time expires, exactly once, with
its system message, an admin notification and other providers to book instead."""

from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import Account, Api, FakeClock, parse_time, run_job
from tests.problems import assert_problem


@pytest.fixture
def customer(api: Api) -> Account:
    return api.register("customer", "Emma")


@pytest.fixture
def therapist(api: Api) -> Account:
    return api.provider("therapist")


def get(client: TestClient, who: Account, path: str) -> Any:
    r = client.get(f"/api/v1{path}", headers=who.headers)
    assert r.status_code == 200, r.text
    return r.json()


def system_texts(client: TestClient, who: Account, booking: dict[str, Any]) -> list[str]:
    items = get(client, who, f"/conversations/{booking['conversationId']}/messages")["items"]
    return [m["content"] for m in items if m["isSystemMessage"]]


def rows(app: FastAPI, sql: str, **params: Any) -> int:
    with app.state.db.engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def test_a_now_request_is_answered_within_5_minutes(
    api: Api, clock: FakeClock, customer: Account, therapist: Account
) -> None:
    booking = api.book(customer, therapist)["booking"]
    assert parse_time(booking["respondBy"]) == clock.at + timedelta(minutes=5)


def test_a_scheduled_request_within_30_minutes_but_never_after_its_start(
    api: Api, client: TestClient, clock: FakeClock, customer: Account, therapist: Account
) -> None:
    later = api.book(
        customer, therapist, mode="scheduled", startAt=api.slot(therapist, after=clock.at)
    )
    assert parse_time(later["booking"]["respondBy"]) == clock.at + timedelta(minutes=30)
    api.schedule(
        therapist,
        weekly={d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        minNoticeMinutes=0,
    )
    soon = clock.at + timedelta(minutes=15)
    booked = api.book(customer, therapist, mode="scheduled", startAt=soon.isoformat())
    assert parse_time(booked["booking"]["respondBy"]) == soon


def test_the_windows_are_settings(
    api: Api, clock: FakeClock, settings_override: Any, customer: Account, therapist: Account
) -> None:
    settings_override(answer_now_seconds=3, answer_scheduled_seconds=600)
    now = api.book(customer, therapist)["booking"]
    assert parse_time(now["respondBy"]) == clock.at + timedelta(seconds=3)
    other = api.provider("therapist")
    scheduled = api.book(customer, other, mode="scheduled", startAt=api.slot(other, after=clock.at))
    assert parse_time(scheduled["booking"]["respondBy"]) == clock.at + timedelta(minutes=10)


def test_an_unanswered_request_expires_once_with_everything_it_owes(
    api: Api,
    app: FastAPI,
    client: TestClient,
    clock: FakeClock,
    make_admin: Any,
    customer: Account,
    therapist: Account,
) -> None:
    booking = api.book(customer, therapist)["booking"]
    clock.advance(minutes=4, seconds=59)
    assert run_job(app, "expire-requests") == 0
    assert get(client, customer, f"/bookings/{booking['id']}")["status"] == "pending"

    clock.advance(seconds=1)
    assert run_job(app, "expire-requests") == 1
    assert run_job(app, "expire-requests") == 0  # exactly once

    expired = get(client, customer, f"/bookings/{booking['id']}")
    assert expired["status"] == "expired" and expired["endedBy"] == "system"
    assert expired["countsAgainst"] is None and expired["lateCancellation"] is False
    for who in (customer, therapist):
        texts = system_texts(client, who, booking)
        assert len(texts) == 2
        assert texts[0].startswith("Booking expired: the provider did not answer by ")
        assert "WITA" in texts[0] and "counts against nobody" in texts[0]
        assert texts[1].startswith("Nobody else nearby is free")
    admin = make_admin()
    kinds = [m["kind"] for m in get(client, admin, "/admin/messages")["items"]]
    assert kinds == ["booking.expired", "booking.created"]
    # the provider is free again, and the events reached both parties
    assert get(client, customer, f"/providers/{therapist.id}")["presence"] == "available"
    for who in (customer, therapist):
        assert (
            rows(
                app,
                "SELECT count(*) FROM user_events WHERE user_id = :u AND type = 'booking.updated'",
                u=who.id,
            )
            == 1
        )


def test_an_answered_request_does_not_expire(
    api: Api,
    app: FastAPI,
    client: TestClient,
    clock: FakeClock,
    customer: Account,
    therapist: Account,
) -> None:
    booking = api.book(customer, therapist)["booking"]
    assert api.act(therapist, booking["id"], "accept").status_code == 200
    clock.advance(hours=1)
    assert run_job(app, "expire-requests") == 0
    assert get(client, customer, f"/bookings/{booking['id']}")["status"] == "accepted"


def test_only_the_server_expires(
    api: Api, client: TestClient, customer: Account, therapist: Account
) -> None:
    booking = api.book(customer, therapist)["booking"]
    assert client.post(
        f"/api/v1/bookings/{booking['id']}/expire", headers=therapist.headers
    ).status_code in (404, 405)


# ---- alternatives ------------------------------------------------------------------------------


def test_alternatives_are_nearby_free_providers_of_the_same_kind_closest_in_price_first(
    api: Api, app: FastAPI, client: TestClient, clock: FakeClock, customer: Account
) -> None:
    asked = api.provider("therapist", area="Ubud")  # IDR 200.000 for 90 minutes

    def therapist_at(price: int, **kw: Any) -> Account:
        return api.provider(
            kw.pop("role", "therapist"), area=kw.pop("area", "Ubud"), price=price, **kw
        )

    near = therapist_at(190_000)
    cheap = therapist_at(120_000)
    costly = therapist_at(450_000)
    therapist_at(200_000, area="Canggu")  # elsewhere
    therapist_at(200_000, presence="offline")  # not available now
    therapist_at(200_000, role="place")  # another kind of provider
    busy = therapist_at(200_000)
    api.book(api.register("hotel"), busy)  # busy with a request now

    booking = api.book(customer, asked)["booking"]
    r = client.get(f"/api/v1/bookings/{booking['id']}/alternatives", headers=customer.headers)
    assert r.status_code == 200, r.text
    # The asked-for service costs IDR 200.000: the closest price comes first.
    assert [p["id"] for p in r.json()["items"]] == [near.id, cheap.id, costly.id]

    clock.advance(minutes=5)
    assert run_job(app, "expire-requests") == 2  # the busy one's request expired too
    texts = system_texts(client, customer, booking)
    assert texts[-1].startswith("Others who could take this booking: ")
    assert all(p.name in texts[-1] for p in (near, cheap, costly))


def test_at_most_five_alternatives(api: Api, client: TestClient, customer: Account) -> None:
    asked = api.provider("therapist")
    for _ in range(7):
        api.provider("therapist")
    booking = api.book(customer, asked)["booking"]
    r = client.get(f"/api/v1/bookings/{booking['id']}/alternatives", headers=customer.headers)
    assert len(r.json()["items"]) == 5
    assert asked.id not in [p["id"] for p in r.json()["items"]]


def test_alternatives_are_for_the_parties(
    api: Api, client: TestClient, customer: Account, therapist: Account
) -> None:
    booking = api.book(customer, therapist)["booking"]
    stranger = api.register("customer")
    r = client.get(f"/api/v1/bookings/{booking['id']}/alternatives", headers=stranger.headers)
    assert_problem(r, 404, "not_found")
