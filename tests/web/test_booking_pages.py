"""The directory, a profile, the Book Now and Schedule forms, and booking cards' actions."""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pesan.timeutil import utcnow
from tests.web.conftest import text_of


def idempotency_key(html: str) -> str:
    return re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)


def test_directory_groups_by_area_with_presence_in_the_providers_zone(visitor, api):
    available = api.provider(area="Ubud")
    busy = api.provider(area="Ubud")
    api.provider(presence="offline", area="Canggu")
    until = (utcnow() + timedelta(hours=2)).replace(second=0, microsecond=0)
    r = api.client.put(
        "/api/v1/providers/me/presence",
        headers=busy.headers,
        json={"presence": "busy", "busyUntil": until.isoformat()},
    )
    assert r.status_code == 200
    visitor.language("en")
    page = text_of(visitor.get("/").text)
    local = until.astimezone(ZoneInfo("Asia/Makassar")).strftime("%H:%M")
    assert "Available now" in page and f"Busy until {local} WITA" in page and "Offline" in page
    assert page.index("Canggu") < page.index("Ubud")
    only_now = text_of(visitor.get("/?now=1").text)
    assert "Available now" in only_now and "Busy until" not in only_now
    assert available.name in only_now
    searched = visitor.get("/?q=Canggu").text
    assert re.findall(r'<h2 id="area-\d+">([^<]+)</h2>', searched) == ["Canggu"]


def test_profile_shows_prices_in_rupiah_without_decimals_and_both_actions(visitor, api):
    provider = api.provider()
    page = visitor.get(f"/providers/{provider.id}")
    assert "Rp 200.000<" in page.text and "90 menit" in page.text
    assert ">Pesan Sekarang</a>" in page.text and ">Jadwalkan</a>" in page.text
    visitor.language("en")
    page = visitor.get(f"/providers/{provider.id}")
    assert "IDR 200,000<" in page.text and ".00" not in page.text
    assert ">Book Now</a>" in page.text and ">Schedule</a>" in page.text
    assert "Indonesian, English" in page.text  # languages by name, in the reader's language


def test_book_now_form_needs_a_signed_in_booker(visitor, api):
    provider = api.provider()
    r = visitor.get(f"/providers/{provider.id}/book?mode=now", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/signin?next=/providers/{provider.id}/book%3Fmode%3Dnow"
    visitor.sign_in(api.provider())
    r = visitor.get(f"/providers/{provider.id}/book?mode=now")
    assert r.status_code == 403 and "untuk jenis akun lain" in r.text


def _book(visitor, provider, html, **fields):
    form = {
        "idempotency_key": idempotency_key(html),
        "mode": "now",
        "service_id": provider.service_ids[0],
        "location_kind": "villa",
        "room": "Villa 3",
        "note": "Gate code 1234",
    }
    form.update(fields)
    return visitor.post(f"/providers/{provider.id}/book", form)


def test_one_submit_lands_in_the_chat_and_a_retry_books_once(visitor, api):
    customer, provider = api.register("customer"), api.provider()
    visitor.sign_in(customer)
    html = visitor.get(f"/providers/{provider.id}/book?mode=now").text
    first = _book(visitor, provider, html)
    again = _book(visitor, provider, html)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    assert first.headers["location"].startswith("/chat/")
    listed = api.client.get("/api/v1/bookings", headers=customer.headers).json()["items"]
    assert len(listed) == 1
    chat = visitor.get(first.headers["location"].split("#")[0])
    assert f'id="booking-{listed[0]["id"]}"' in chat.text
    assert "data-countdown=" in chat.text and "Menunggu jawaban" in chat.text
    # a new form render is a new key: a second, deliberate booking is possible
    assert idempotency_key(visitor.get(f"/providers/{provider.id}/book").text) != (
        idempotency_key(html)
    )


def test_a_form_with_a_missing_room_comes_back_with_a_hint_and_books_nothing(visitor, api):
    customer, provider = api.register("customer"), api.provider()
    visitor.sign_in(customer)
    visitor.language("en")
    html = visitor.get(f"/providers/{provider.id}/book?mode=now").text
    r = _book(visitor, provider, html, room="", location_kind="hotel")
    assert r.status_code == 422
    assert "Write the room or villa number." in r.text
    assert 'value="hotel" checked' in r.text  # what was typed is kept
    assert api.client.get("/api/v1/bookings", headers=customer.headers).json()["items"] == []


def test_book_now_with_an_unavailable_provider_says_what_to_do(visitor, api):
    customer, provider = api.register("customer"), api.provider(presence="offline")
    visitor.sign_in(customer)
    visitor.language("en")
    html = visitor.get(f"/providers/{provider.id}/book?mode=now").text
    r = _book(visitor, provider, html)
    assert r.status_code == 409
    assert "Choose a time with Schedule" in r.text


def test_schedule_offers_free_times_in_the_providers_zone(visitor, api):
    customer, provider = api.register("customer"), api.provider(presence="offline")
    taken = api.book(
        api.register("customer"), provider, mode="scheduled", startAt=api.slot(provider)
    )
    visitor.sign_in(customer)
    html = visitor.get(f"/providers/{provider.id}/book?mode=scheduled").text
    assert "WITA" in html
    offered = re.findall(r'<option value="([^"]+)"', html)
    free = api.client.get(
        f"/api/v1/providers/{provider.id}/availability",
        params={"serviceId": provider.service_ids[0]},
    ).json()["items"]
    assert offered and len(offered) == len(free)
    taken_start = taken["booking"]["startAt"].replace(".000Z", "+00:00")
    assert taken_start not in offered  # a held time is not offered
    chosen = offered[-1]
    r = _book(visitor, provider, html, mode="scheduled", start_at=chosen)
    assert r.status_code == 303, r.text
    mine = api.client.get("/api/v1/bookings", headers=customer.headers).json()["items"][0]
    assert mine["mode"] == "scheduled"
    assert mine["startAt"].replace(".000Z", "+00:00") == chosen
    local = datetime.fromisoformat(chosen).astimezone(ZoneInfo("Asia/Makassar"))
    chat = visitor.get(r.headers["location"].split("#")[0])
    assert f"{local:%H:%M} WITA" in chat.text


def test_a_time_taken_meanwhile_comes_back_with_other_free_times(visitor, api):
    customer, provider = api.register("customer"), api.provider(presence="offline")
    visitor.sign_in(customer)
    visitor.language("en")
    html = visitor.get(f"/providers/{provider.id}/book?mode=scheduled").text
    chosen = re.findall(r'<option value="([^"]+)"', html)[0]
    api.book(api.register("customer"), provider, mode="scheduled", startAt=chosen)
    r = _book(visitor, provider, html, mode="scheduled", start_at=chosen)
    assert r.status_code == 409
    assert "That time was just taken." in r.text
    assert chosen not in re.findall(r'<option value="([^"]+)"', r.text)


def _card(visitor, booking_id):
    return visitor.get(f"/bookings/{booking_id}/card", headers={"x-requested-with": "pesan"})


def _buttons(html: str) -> list[str]:
    return re.findall(r"<button[^>]*>([^<]+)</button>", html)


def test_each_side_sees_exactly_its_actions_and_they_work(visitor, other_visitor, api, make_admin):
    customer, provider = api.register("customer"), api.provider()
    booking = api.book(customer, provider)["booking"]
    visitor.sign_in(provider)
    visitor.language("en")
    other_visitor.sign_in(customer)
    other_visitor.language("en")
    assert _buttons(_card(visitor, booking["id"]).text) == ["Accept", "Decline", "Cancel"]
    assert _buttons(_card(other_visitor, booking["id"]).text) == ["Cancel"]

    r = visitor.post(f"/bookings/{booking['id']}/accept", headers={"x-requested-with": "pesan"})
    assert r.status_code == 200 and "Accepted" in r.text
    assert _buttons(r.text) == ["On the way", "Cancel", "Complete"]
    r = visitor.post(f"/bookings/{booking['id']}/on-the-way", {"eta_minutes": "15"})
    assert r.status_code == 303  # without the page's script: back to the chat
    assert r.headers["location"].startswith(f"/chat/{booking['conversationId']}")
    assert _buttons(_card(visitor, booking["id"]).text) == ["Arrived", "Cancel", "Complete"]
    # a stale button: the customer cannot accept, and the card says what is possible now
    r = other_visitor.post(
        f"/bookings/{booking['id']}/accept", headers={"x-requested-with": "pesan"}
    )
    assert r.status_code == 403 and r.headers["x-pesan-problem"] == "wrong_actor"
    assert _buttons(r.text) == ["Cancel"]
    assert "Only the other side of this booking can do that." in r.text

    admin = make_admin()
    watcher = other_visitor
    watcher.client.cookies.set("pesan_session", admin.token)
    assert _buttons(_card(watcher, booking["id"]).text) == []


def test_decline_keeps_the_reason_as_text(visitor, api):
    customer, provider = api.register("customer"), api.provider()
    booking = api.book(customer, provider)["booking"]
    visitor.sign_in(provider)
    reason = "<b>Hujan</b> deras"
    r = visitor.post(
        f"/bookings/{booking['id']}/decline",
        {"reason": reason},
        headers={"x-requested-with": "pesan"},
    )
    assert r.status_code == 200
    assert "&lt;b&gt;Hujan&lt;/b&gt; deras" in r.text and "<b>Hujan" not in r.text
    assert _buttons(r.text) == []


def test_a_customer_can_ask_before_booking(visitor, api):
    customer, provider = api.register("customer"), api.provider()
    visitor.sign_in(customer)
    visitor.language("en")
    page = visitor.get(f"/providers/{provider.id}")
    assert ">Ask a question in the chat</button>" in page.text
    r = visitor.post(f"/providers/{provider.id}/chat")
    assert r.status_code == 303 and r.headers["location"].startswith("/chat/")
    chat = visitor.get(r.headers["location"])
    assert chat.status_code == 200 and "No messages yet. Say hello!" in chat.text
    # the same conversation the booking will use
    booked = api.book(customer, provider)
    assert r.headers["location"] == f"/chat/{booked['conversation']['id']}"


def test_a_scheduled_booking_is_moved_from_its_card(visitor, other_visitor, api):
    customer, provider = api.register("customer"), api.provider()
    first, later = api.slots(provider, 2)
    booking = api.book(customer, provider, mode="scheduled", startAt=first)["booking"]
    fragment = {"x-requested-with": "pesan"}
    visitor.sign_in(customer)
    visitor.language("en")
    other_visitor.sign_in(provider)
    other_visitor.language("en")
    card = _card(visitor, booking["id"]).text
    assert "Propose another time" in card
    offered = re.findall(r'<option value="([^"]+)"', card)
    wanted = datetime.fromisoformat(later.replace("Z", "+00:00")).isoformat()
    assert wanted in offered
    r = visitor.post(f"/bookings/{booking['id']}/proposals", {"start_at": wanted}, headers=fragment)
    assert r.status_code == 200 and "Waiting for the other side to answer." in r.text
    assert "Accept the new time" not in r.text  # the proposer does not answer themselves
    theirs = _card(other_visitor, booking["id"]).text
    assert _buttons(theirs)[:2] == ["Accept", "Decline"]  # the request itself, still pending
    assert "Accept the new time" in theirs and "Keep the old time" in theirs
    proposal = re.search(r"/proposals/([^/]+)/accept", theirs).group(1)
    r = other_visitor.post(
        f"/bookings/{booking['id']}/proposals/{proposal}/accept", headers=fragment
    )
    assert r.status_code == 200 and "Proposed new time" not in r.text
    moved = api.client.get(f"/api/v1/bookings/{booking['id']}", headers=customer.headers).json()
    assert moved["startAt"] == later
    # a proposal that is gone cannot be answered twice: the card says so
    again = other_visitor.post(
        f"/bookings/{booking['id']}/proposals/{proposal}/accept", headers=fragment
    )
    assert again.status_code >= 400 and again.headers["x-pesan-problem"]
