"""A real server expires an unanswered request by itself, within seconds of its deadline."""

import time

import pytest

from tests.live.conftest import Rest, open_live

pytestmark = pytest.mark.slow


def test_an_ignored_now_request_expires_within_15_seconds(servers, tmp_path):
    server = servers(PESAN_DATA_DIR=str(tmp_path / "data"), PESAN_ANSWER_NOW_SECONDS="3")
    rest = Rest(server.base)
    customer, therapist = rest.register("customer"), rest.provider()
    other = rest.provider()  # someone else free nearby
    live = open_live(server.ws_url, customer.token)
    booked = rest.book(customer, therapist)
    booking_id = booked["booking"]["id"]
    assert rest.http.get(f"/providers/{therapist.id}").json()["presence"] == "busy"
    started = time.monotonic()

    update = live.next_of("booking.updated", timeout=15)
    assert update["data"]["id"] == booking_id and update["data"]["status"] == "expired"
    assert time.monotonic() - started < 15

    messages = rest.http.get(
        f"/conversations/{booked['conversation']['id']}/messages", headers=customer.headers
    ).json()["items"]
    notes = [m["content"] for m in messages if m["isSystemMessage"]]
    assert notes[0].startswith("Booking expired")
    assert notes[1].startswith("Others who could take this booking: ")
    alternatives = rest.http.get(f"/bookings/{booking_id}/alternatives", headers=customer.headers)
    assert alternatives.status_code == 200
    assert [p["id"] for p in alternatives.json()["items"]] == [other.id]
    assert rest.http.get(f"/providers/{therapist.id}").json()["presence"] == "available"
