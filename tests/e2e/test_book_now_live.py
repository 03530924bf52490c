"""A customer finds an available therapist, books now and chats; the therapist, in a second
browser, sees and hears the request arrive, accepts, goes on the way, arrives and completes.
Neither reloads a page; script-injection strings show as text; a cut connection misses
nothing; a double click books once."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, new_context, unique

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SCRIPT_NAME = '<img src=x onerror="window.pwned=1">Made'
SCRIPT_TEXT = '<script>window.pwned=2</script><b onmouseover="window.pwned=3">hi</b>'


def no_script_ran(page):
    assert page.evaluate("() => window.pwned") is None


def test_book_now_chat_and_serve_live_in_two_browsers(browser, web_server, people):
    area = unique("Ubud-")
    therapist = people.therapist(SCRIPT_NAME, area)
    customer = people.customer()
    dialogs = []

    # The therapist waits on the dashboard, in Indonesian.
    t_context = new_context(browser, web_server, "id", therapist)
    t_page = t_context.new_page()
    t_page.on("dialog", lambda d: dialogs.append(d.message))
    t_page.goto("/dashboard")
    expect(t_page.locator("body")).to_have_attribute("data-live", "live")

    # The customer signs in (English) and finds her.
    c_context = new_context(browser, web_server, "en")
    c_page = c_context.new_page()
    c_page.on("dialog", lambda d: dialogs.append(d.message))
    c_page.goto("/signin")
    c_page.get_by_label("Email").fill(customer.email)
    c_page.get_by_label("Password").fill(PASSWORD)
    c_page.get_by_role("button", name="Sign in", exact=True).click()
    c_page.get_by_label("Search by name, treatment or area").fill(area)
    c_page.get_by_label("Available now only").check()
    c_page.get_by_role("button", name="Search", exact=True).click()
    listing = c_page.locator(".provider", has_text=SCRIPT_NAME)
    expect(listing).to_contain_text("Available now")
    listing.get_by_role("link").click()
    expect(c_page.get_by_role("heading", level=1)).to_have_text(SCRIPT_NAME)
    expect(c_page.locator(".services")).to_contain_text("IDR 150,000")

    # Book Now, with a double click on the submit button.
    c_page.get_by_role("link", name="Book Now", exact=True).click()
    c_page.get_by_label(re.compile("90 min")).check()
    c_page.get_by_label("Villa", exact=True).check()
    c_page.get_by_label("Room or villa number (hotel or villa)").fill("Villa 3")
    c_page.get_by_label("Note for the provider").fill(SCRIPT_TEXT)
    c_page.get_by_role("button", name="Book Now", exact=True).dblclick()
    c_page.wait_for_url(re.compile(r"/chat/"))
    card = c_page.locator(".booking-card").first
    expect(card.locator(".status-word")).to_have_text("Waiting for an answer")
    expect(card.locator(".countdown")).to_contain_text("left to answer")
    expect(card.locator(".note")).to_have_text(SCRIPT_TEXT)
    expect(card.get_by_role("button", name="Cancel", exact=True)).to_be_visible()
    expect(card.get_by_role("button", name="Accept")).to_have_count(0)
    expect(c_page.locator("body")).to_have_attribute("data-live", "live")

    # The therapist sees and hears it arrive, without reloading.
    request_card = t_page.locator("#work .booking-card")
    expect(request_card).to_have_count(1)
    expect(request_card.locator(".countdown")).to_contain_text("Sisa waktu menjawab")
    assert t_page.evaluate("() => window.pesanSoundCount") >= 1
    expect(t_page.locator("#unread-total")).not_to_be_hidden()

    # The customer writes; the therapist opens the chat and sees it as text.
    c_page.get_by_role("textbox", name="Message").fill(SCRIPT_TEXT)
    c_page.get_by_role("button", name="Send", exact=True).click()
    mine = c_page.locator(".msg.mine").last
    expect(mine.locator(".text")).to_have_text(SCRIPT_TEXT)
    t_page.locator("#work .open-chat a").click()
    t_page.wait_for_url(re.compile(r"/chat/"))
    expect(t_page.locator("body")).to_have_attribute("data-live", "live")
    expect(t_page.locator(".msg.theirs .text").last).to_have_text(SCRIPT_TEXT)
    # ... so the customer's message shows as read
    expect(mine.locator(".tick")).to_have_attribute("aria-label", "Read")

    # Typing shows on the other side.
    t_page.get_by_role("textbox", name="Pesan", exact=True).press_sequentially("Sa")
    expect(c_page.locator("#typing")).to_contain_text("is typing")

    # Accept (in Indonesian: Terima): the customer's card follows live.
    t_card = t_page.locator(".booking-card").first
    t_card.get_by_role("button", name="Terima", exact=True).click()
    expect(card.locator(".status-word")).to_have_text("Accepted")
    expect(c_page.locator(".msg.system .text").last).to_contain_text("Booking accepted.")
    expect(t_page.locator(".msg.system .text").last).to_contain_text("Pesanan diterima.")
    expect(card.locator(".countdown")).to_have_count(0)

    # The customer's connection is cut; meanwhile the therapist writes and sets off.
    c_context.set_offline(True)
    expect(c_page.locator("body")).to_have_attribute("data-live", "offline")
    expect(c_page.locator("#live-status")).to_be_visible()
    t_page.get_by_role("textbox", name="Pesan", exact=True).fill("Saya berangkat sekarang")
    t_page.get_by_role("button", name="Kirim", exact=True).click()
    expect(t_page.locator(".msg.mine .text").last).to_have_text("Saya berangkat sekarang")
    t_card = t_page.locator(".booking-card").first
    t_card.get_by_label("Tiba dalam (menit)").fill("15")
    t_card.get_by_role("button", name="Dalam perjalanan", exact=True).click()
    expect(t_page.locator(".booking-card .status-word").first).to_have_text("Dalam perjalanan")
    # A send while offline fails visibly and keeps the text; Send again delivers it once.
    c_page.get_by_role("textbox", name="Message").fill("See you soon")
    c_page.get_by_role("button", name="Send", exact=True).click()
    expect(c_page.locator("#send-problem")).to_contain_text("Not sent")
    expect(c_page.get_by_role("textbox", name="Message")).to_have_value("See you soon")
    c_context.set_offline(False)
    expect(c_page.locator("body")).to_have_attribute("data-live", "live")
    c_page.get_by_role("button", name="Send", exact=True).click()
    expect(c_page.locator("#send-problem")).to_be_hidden()
    expect(t_page.locator(".msg.theirs .text").last).to_have_text("See you soon")
    expect(t_page.locator(".msg.theirs .text", has_text="See you soon")).to_have_count(1)
    expect(c_page.locator(".msg.theirs .text").last).to_have_text("Saya berangkat sekarang")
    expect(card.locator(".status-word")).to_have_text("On the way")
    expect(c_page.locator(".msg.system .text").last).to_have_text(
        re.compile(r"^On the way, arriving about \d\d:\d\d WITA \(in 15 minutes\)\.$")
    )
    expect(t_page.locator(".msg.system .text").last).to_contain_text("Dalam perjalanan, tiba")

    # Arrived, then Complete.
    t_page.locator(".booking-card").first.get_by_role(
        "button", name="Sudah tiba", exact=True
    ).click()
    expect(card.locator(".status-word")).to_have_text("Arrived")
    t_page.locator(".booking-card").first.get_by_role(
        "button", name="Selesaikan", exact=True
    ).click()
    expect(card.locator(".status-word")).to_have_text("Completed")
    expect(card.get_by_role("button")).to_have_count(0)

    # One booking, whatever the double click did; no script ran anywhere.
    r = people.rest.http.get("/bookings", headers=customer.headers)
    assert [b["status"] for b in r.json()["items"]] == ["completed"]
    for page in (c_page, t_page):
        no_script_ran(page)
    assert dialogs == []
    c_context.close()
    t_context.close()
