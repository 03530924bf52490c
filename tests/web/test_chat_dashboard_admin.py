"""Chat pages, the provider's dashboard, the admin pages, error pages and the offline API docs."""

import re
from datetime import timedelta

import pytest

from pesan.auth import Caller
from pesan.bookings import views as booking_views
from pesan.chat import views as chat_views
from pesan.errors import Forbidden
from pesan.live import events
from pesan.providers import service as providers
from pesan.roles import Role
from pesan.timeutil import utcnow
from tests.web.conftest import text_of


def caller_of(account):
    return Caller(id=account.id, name=account.name, role=Role(account.role), email=account.email)


def test_chat_page_shows_messages_as_text_with_read_ticks_and_the_live_state(visitor, api):
    customer, provider = api.register("customer"), api.provider()
    answer = api.book(customer, provider)
    conversation = answer["conversation"]["id"]
    api.send(customer, conversation, "<script>alert(1)</script>")
    visitor.sign_in(customer)
    page = visitor.get(f"/chat/{conversation}")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>alert(1)" not in page.text
    assert 'aria-label="Terkirim"' in page.text  # sent, not read yet
    live = re.search(r'id="pesan-live">(.*?)</script>', page.text).group(1)
    assert customer.id in live and '"lastEventId": "0000000000' in live
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    # the provider reads it: the tick turns to "read"
    last = api.client.get(
        f"/api/v1/conversations/{conversation}/messages", headers=provider.headers
    ).json()["items"][-1]["id"]
    visitor2 = visitor.client
    r = api.client.post(
        f"/api/v1/conversations/{conversation}/read",
        headers=provider.headers,
        json={"upToMessageId": last},
    )
    assert r.status_code == 200
    assert 'aria-label="Dibaca"' in visitor2.get(f"/chat/{conversation}").text


def test_marking_read_from_the_page_clears_the_unread_badge(visitor, api):
    customer, provider = api.register("customer"), api.provider()
    conversation = api.book(customer, provider)["conversation"]["id"]
    message = api.send(customer, conversation, "Halo").json()
    visitor.sign_in(provider)
    page = visitor.get("/chat")
    assert re.search(r'id="unread-total" data-count="2"', page.text)  # request + hello
    r = visitor.post(
        f"/chat/{conversation}/read",
        {"up_to": message["id"]},
        headers={"x-requested-with": "pesan"},
    )
    assert r.json() == {"unreadCount": 0}
    assert 'data-count="0"' in visitor.get("/chat").text


def test_a_page_form_send_works_without_scripts(visitor, api):
    customer, provider = api.register("customer"), api.provider()
    conversation = api.book(customer, provider)["conversation"]["id"]
    visitor.sign_in(customer)
    r = visitor.post(f"/chat/{conversation}/messages", {"content": "Tanpa skrip"})
    assert r.status_code == 303 and r.headers["location"] == f"/chat/{conversation}"
    assert "Tanpa skrip" in visitor.get(f"/chat/{conversation}").text


def test_someone_elses_chat_is_not_found_as_a_page(visitor, api):
    customer, provider = api.register("customer"), api.provider()
    conversation = api.book(customer, provider)["conversation"]["id"]
    visitor.sign_in(api.register("customer"))
    visitor.language("en")
    r = visitor.get(f"/chat/{conversation}")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "We could not find that." in r.text and 'href="/"' in r.text


def test_dashboard_shows_requests_today_and_switches_presence(visitor, api):
    customer, provider = api.register("customer"), api.provider()
    booking = api.book(customer, provider, guestName="Anna")["booking"]
    visitor.sign_in(provider)
    visitor.language("en")
    page = visitor.get("/dashboard")
    assert f'id="booking-{booking["id"]}"' in page.text
    assert ">Accept</button>" in page.text and "data-countdown=" in page.text
    work = text_of(visitor.get("/dashboard/work").text)
    assert "Requests waiting for your answer" in work and "Today" in work
    assert "Waiting for an answer" in work
    r = visitor.post("/dashboard/presence", {"presence": "busy", "busy_for": "60"})
    assert r.status_code == 303
    profile = api.client.get(f"/api/v1/providers/{provider.id}").json()
    assert profile["presence"] == "busy" and profile["busyUntil"] is not None
    assert "Busy until" in visitor.get("/dashboard").text


def test_dashboard_edits_the_profile_and_adds_a_treatment(visitor, api):
    provider = api.register("therapist")
    visitor.sign_in(provider)
    r = visitor.post(
        "/dashboard/profile",
        {"name": "Komang", "area": "Sanur", "bio": "Pijat", "languages": ["id", "ja"]},
    )
    assert r.status_code == 303
    r = visitor.post(
        "/dashboard/services", {"name": "Pijat kaki", "duration_minutes": "60", "price": "120.000"}
    )
    assert r.status_code == 303
    profile = api.client.get(f"/api/v1/providers/{provider.id}").json()
    assert (profile["name"], profile["area"], profile["languages"]) == (
        "Komang",
        "Sanur",
        ["id", "ja"],
    )
    assert profile["services"][0]["price"] == {"amount": 120000, "currency": "IDR"}
    bad = visitor.post("/dashboard/services", {"name": "", "duration_minutes": "2", "price": "x"})
    assert bad.status_code == 422 and "Periksa layanan" in bad.text


def test_the_dashboard_is_for_providers(visitor, api):
    visitor.sign_in(api.register("customer"))
    assert visitor.get("/dashboard").status_code == 403


def test_admin_pages_inbox_bookings_conversations_and_status(visitor, api, make_admin):
    customer, provider = api.register("customer"), api.provider()
    answer = api.book(customer, provider)
    admin = make_admin()
    visitor.client.cookies.set("pesan_session", admin.token)
    visitor.language("en")
    inbox = text_of(visitor.get("/admin").text)
    assert f"New booking: {customer.name} → {provider.name}" in inbox
    listed = visitor.get("/admin/bookings?status=pending").text
    assert answer["booking"]["serviceName"] in listed
    assert "No bookings with this status." in visitor.get("/admin/bookings?status=completed").text
    conversations = visitor.get("/admin/conversations").text
    assert f'href="/chat/{answer["conversation"]["id"]}"' in conversations
    read_only = visitor.get(f"/chat/{answer['conversation']['id']}").text
    assert "It is read-only." in read_only and 'id="composer"' not in read_only
    status = text_of(visitor.get("/admin/status").text)
    assert "Everything works." in status and "The database answers." in status
    visitor.client.cookies.set("pesan_session", customer.token)
    assert visitor.get("/admin").status_code == 403


def test_unknown_pages_are_pages_and_the_api_keeps_problem_json(visitor):
    page = visitor.get("/no/such/page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Kami tidak menemukannya." in page.text
    api = visitor.get("/api/v1/no/such")
    assert api.headers["content-type"].startswith("application/problem+json")


def test_api_docs_load_swagger_ui_from_this_server(visitor):
    page = visitor.get("/api/v1/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/static/swagger-ui/") for s in sources), sources
    for source in sources:
        assert visitor.get(source).status_code == 200, source
    assert "cdn" not in page.text.lower()


def test_the_service_functions_behind_the_pages(app, api, make_admin):
    customer, provider, other = api.register("customer"), api.provider(), api.provider("place")
    answer = api.book(customer, provider)
    api.send(provider, answer["conversation"]["id"], "Halo")
    db = app.state.db
    with db.reader() as session:
        assert chat_views.unread_by_conversation(session, customer.id) == {
            answer["conversation"]["id"]: 1
        }
        assert chat_views.unread_by_conversation(session, provider.id) == {
            answer["conversation"]["id"]: 1
        }
        mine = booking_views.bookings_in_conversation(
            session, caller_of(customer), answer["conversation"]["id"]
        )
        assert [b.id for b in mine] == [answer["booking"]["id"]]
        now = utcnow()
        day = booking_views.provider_schedule(
            session, caller_of(provider), now - timedelta(hours=1), now + timedelta(hours=1)
        )
        assert [b.id for b in day] == [answer["booking"]["id"]]
        assert booking_views.pending_for_provider(session, caller_of(other)) == []
        assert providers.areas(session) == ["Ubud"]
        assert int(events.newest_event_id(session, customer.id)) >= 3
        admin = make_admin()
        admin_caller = caller_of(admin)
        assert len(chat_views.all_conversations(session, admin_caller, 10)) == 1
        with pytest.raises(Forbidden):
            chat_views.all_conversations(session, caller_of(customer), 10)


def test_dashboard_edits_working_hours_with_a_break_and_a_day_off(visitor, api):
    provider = api.provider()
    visitor.sign_in(provider)
    page = visitor.get("/dashboard").text
    assert 'value="09:00-21:00"' in page  # the default, as a provider types it
    hours = {day: "08:00-20:00" for day in ("tue", "wed", "thu", "fri", "sat")}
    hours.update({"mon": "09:00-12:00, 13.00-21:00", "sun": ""})
    r = visitor.post("/dashboard/hours", {**hours, "buffer_after_minutes": "30"})
    assert r.status_code == 303
    schedule = api.client.get(f"/api/v1/providers/{provider.id}/schedule").json()
    assert schedule["weeklyHours"]["mon"] == [
        {"opens": "09:00", "closes": "12:00"},
        {"opens": "13:00", "closes": "21:00"},
    ]
    assert schedule["weeklyHours"]["sun"] == []
    assert schedule["bufferAfterMinutes"] == 30
    assert 'value="09:00-12:00, 13:00-21:00"' in visitor.get("/dashboard").text
    bad = visitor.post("/dashboard/hours", {**hours, "mon": "nine to five"})
    assert bad.status_code == 422 and "Periksa jam kerja" in bad.text
