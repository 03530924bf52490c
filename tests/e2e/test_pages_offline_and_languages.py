"""In a real browser: nothing is fetched from outside the server (the API docs included), and
both languages render with no string of the other, scripts' strings included."""

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import new_context, unique
from tests.web.test_languages import leaks

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_pages_and_api_docs_fetch_nothing_from_elsewhere(browser, web_server, people):
    therapist = people.therapist("Ketut", unique("Sanur-"))
    context = new_context(browser, web_server, "en")
    outside = []

    def guard(route):
        if route.request.url.startswith(web_server.base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    for path in ("/", f"/providers/{therapist.id}", "/signin", "/signup"):
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.goto("/api/v1/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("pesan")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    assert outside == []
    context.close()


@pytest.mark.parametrize("language", ["id", "en"])
def test_both_languages_render_with_no_string_of_the_other(browser, web_server, people, language):
    therapist = people.therapist("Wayan", unique("Amed-"))
    customer = people.customer()
    answer = people.rest.book(customer, therapist)
    context = new_context(browser, web_server, language, customer)
    page = context.new_page()
    paths = ["/", f"/providers/{therapist.id}", f"/providers/{therapist.id}/book?mode=scheduled"]
    paths += ["/chat", f"/chat/{answer['conversation']['id']}"]
    for path in paths:
        page.goto(path)
        expect(page.locator("html")).to_have_attribute("lang", language)
        assert leaks(page.inner_text("body"), language) == [], path
    # what the scripts write: the countdown, in the page's language
    countdown = page.locator(".countdown")
    expect(countdown).to_contain_text("Sisa waktu menjawab" if language == "id" else "left to")
    # the switch on every page, remembered on the next one
    other = "en" if language == "id" else "id"
    page.get_by_role("button", name="English" if other == "en" else "Bahasa Indonesia").click()
    expect(page.locator("html")).to_have_attribute("lang", other)
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", other)
    context.close()


def test_the_chat_list_gains_a_new_conversation_and_its_badge_live(browser, web_server, people):
    therapist = people.therapist("Nyoman <i>Ayu</i>", unique("Canggu-"))
    customer = people.customer()
    context = new_context(browser, web_server, "en", therapist)
    page = context.new_page()
    page.goto("/chat")
    expect(page.locator("body")).to_have_attribute("data-live", "live")
    expect(page.locator("#conversations li")).to_have_count(0)
    people.rest.book(customer, therapist)
    entry = page.locator("#conversations li")
    expect(entry).to_have_count(1)
    expect(entry.locator(".name")).to_have_text(customer.name)
    expect(entry.locator(".last")).to_have_text("New booking request")
    expect(entry.locator(".badge")).to_have_text("1")
    expect(page.locator("#unread-total")).to_have_text("1")
    context.close()
