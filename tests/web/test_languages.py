"""Every string has a translation, the catalogues match the code, and no page shows an English
string in Indonesian (or an Indonesian one in English)."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from pesan.web import i18n
from tests.web.conftest import text_of

WEB = Path(i18n.__file__).parent
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}


def source_strings() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(WEB), METHODS, keywords=KEYWORDS, options_map=OPTIONS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def catalogue(language: str):
    path = i18n.TRANSLATIONS_DIR / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as po:
        return read_po(po, locale=language)


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_every_string_in_the_code_has_a_translation(language):
    strings = source_strings()
    assert len(strings) > 150
    entries = {m.id: m for m in catalogue(language) if m.id}
    missing = sorted(strings - entries.keys())
    assert not missing, f"run scripts/translations, then translate: {missing}"
    untranslated = sorted(s for s in strings if not entries[s].string or entries[s].fuzzy)
    assert not untranslated, f"{language}.po lacks: {untranslated}"
    stale = sorted(entries.keys() - strings)
    assert not stale, f"{language}.po has strings the code no longer uses: {stale}"


def test_the_main_controls_read_as_agreed():
    english = {m.id: m.string for m in catalogue("en") if m.id}
    indonesian = {m.id: m.string for m in catalogue("id") if m.id}
    agreed = {
        "Book Now": "Pesan Sekarang",
        "Schedule": "Jadwalkan",
        "Send": "Kirim",
        "Accept": "Terima",
        "Decline": "Tolak",
        "On the way": "Dalam perjalanan",
        "Arrived": "Sudah tiba",
        "Complete": "Selesaikan",
        "Cancel": "Batalkan",
        "Sign in": "Masuk",
        "Sign out": "Keluar",
    }
    for source, translated in agreed.items():
        assert english[source] == source
        assert indonesian[source] == translated


def test_money_and_times_as_people_in_bali_read_them():
    assert i18n.money(150000, "IDR", "id") == "Rp 150.000"
    assert i18n.money(150000, "IDR", "en") == "IDR 150,000"
    moment = datetime(2026, 11, 25, 6, 30, tzinfo=UTC)
    assert i18n.clock(moment, "Asia/Makassar", "en") == "14:30 WITA"
    assert i18n.clock(moment, "Asia/Jakarta", "id") == "13:30 WIB"
    assert i18n.clock(moment, "Asia/Jayapura", "id") == "15:30 WIT"
    assert i18n.clock(moment, "Europe/Paris", "en") == "07:30 Europe/Paris"


def distinctive(source: str, target: str) -> bool:
    """A string worth looking for: translated differently, not a short word, not a number
    with a unit (server-written data such as a booking's policy says "30 minutes" too)."""
    return source != target and len(source) > 6 and "%(" not in source and not source[0].isdigit()


def leaks(page: str, language: str) -> list[str]:
    """Strings of the other language that show on a page meant to be in `language`."""
    pairs = [(m.id, m.string) for m in catalogue("id") if m.id]
    text = text_of(page)
    if language == "id":
        other = [s for s, t in pairs if distinctive(s, t)]
        own = [t for _, t in pairs]
    else:
        other = [t for s, t in pairs if distinctive(t, s)]
        own = [s for s, _ in pairs]
    return [s for s in other if s in text and not any(s in o for o in own if o != s)]


def pages(api, visitor, make_admin):
    """The main pages, as the people who see them."""
    customer = api.register("customer", name="Emma Clarke")
    provider = api.register("therapist", name="Made Wirawan")
    r = api.client.post(
        "/api/v1/providers/me/services",
        headers=provider.headers,
        json={"name": "Pijat Bali", "durationMinutes": 60, "price": {"amount": 150000}},
    )
    provider.service_ids.append(r.json()["id"])
    api.client.put(
        "/api/v1/providers/me/presence", headers=provider.headers, json={"presence": "available"}
    )
    answer = api.book(customer, provider)
    conversation = answer["conversation"]["id"]
    admin = make_admin()
    signed_out = ["/", f"/providers/{provider.id}", "/signin", "/signup", "/nope"]
    as_customer = [f"/providers/{provider.id}/book?mode=now", "/chat", f"/chat/{conversation}"]
    as_customer.append(f"/providers/{provider.id}/book?mode=scheduled")
    as_provider = ["/dashboard", f"/chat/{conversation}"]
    as_admin = ["/admin", "/admin/bookings", "/admin/conversations", "/admin/status"]
    return [
        (None, signed_out),
        (customer.token, as_customer),
        (provider.token, as_provider),
        (admin.token, as_admin),
    ]


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_pages_show_no_string_of_the_other_language(visitor, api, make_admin, language):
    visitor.language(language)
    for token, paths in pages(api, visitor, make_admin):
        if token:
            visitor.client.cookies.set("pesan_session", token)
        for path in paths:
            page = visitor.get(path)
            assert page.status_code in (200, 404), (path, page.status_code)
            assert f'<html lang="{language}">' in page.text
            assert leaks(page.text, language) == [], path


def test_the_leak_check_would_catch_an_english_string():
    page = "<p>Tidak ada yang cocok.</p><p>Requests waiting for your answer</p>"
    assert leaks(page, "id") == ["Requests waiting for your answer"]


def test_lines_the_server_posts_are_shown_in_the_readers_language():
    from pesan.web.words import SYSTEM_LINES, system_text

    token = i18n.use("id")
    try:
        for line in SYSTEM_LINES:
            assert system_text(line) != line, line
        eta = "On the way, arriving about 14:30 WITA (in 15 minutes). Reason: Macet <b>"
        assert system_text(eta) == (
            "Dalam perjalanan, tiba sekitar 14:30 WITA (15 menit lagi). Alasan: Macet <b>"
        )
        assert system_text("Something else.") == "Something else."
    finally:
        i18n.reset(token)


def test_the_constant_lines_are_the_ones_the_rules_post():
    from datetime import timedelta

    from pesan.bookings import rules
    from pesan.bookings.enums import Actor, BookingAction, BookingMode, BookingStatus
    from pesan.web.words import ETA_LINE, SYSTEM_LINES

    start = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
    facts = rules.Facts(
        status=BookingStatus.pending,
        mode=BookingMode.now,
        location_kind="villa",
        start_at=start,
        end_at=start + timedelta(hours=1),
        eta_at=start + timedelta(minutes=15),
    )
    outcome = rules.Outcome(BookingStatus.declined, ())
    policy = rules.Policy()

    def line(action, actor=Actor.provider, outcome=outcome):
        return rules.system_message(
            action, facts, outcome, "Asia/Makassar", policy, actor=actor, now=start
        )

    assert line(BookingAction.decline) in SYSTEM_LINES
    assert line(BookingAction.decline, Actor.system) in SYSTEM_LINES
    assert line(BookingAction.arrived) in SYSTEM_LINES
    assert line(BookingAction.complete) in SYSTEM_LINES
    assert line(BookingAction.cancel, Actor.booker) in SYSTEM_LINES
    assert line(BookingAction.cancel, Actor.provider) in SYSTEM_LINES
    assert ETA_LINE.match(line(BookingAction.on_the_way))
