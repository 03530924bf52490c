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


def singular(message_id: str | tuple[str, ...]) -> str:
    return message_id if isinstance(message_id, str) else message_id[0]


def translated(message) -> bool:
    """Every form written: a plural entry has one text per plural form."""
    if isinstance(message.string, tuple):
        return all(message.string)
    return bool(message.string)


def catalogue(language: str):
    path = i18n.TRANSLATIONS_DIR / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as po:
        return read_po(po, locale=language)


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_every_string_in_the_code_has_a_translation(language):
    strings = source_strings()
    assert len(strings) > 150
    entries = {singular(m.id): m for m in catalogue(language) if m.id}
    missing = sorted(strings - entries.keys())
    assert not missing, f"run scripts/translations, then translate: {missing}"
    untranslated = sorted(s for s in strings if not translated(entries[s]) or entries[s].fuzzy)
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
    assert i18n.clock(moment, "Europe/Paris", "en") == "07:30 CET"


def distinctive(source: str, target: str) -> bool:
    """A string worth looking for: translated differently, not a short word, not a number
    with a unit (server-written data such as a booking's policy says "30 minutes" too)."""
    return source != target and len(source) > 6 and "%(" not in source and not source[0].isdigit()


def leaks(page: str, language: str) -> list[str]:
    """Strings of the other language that show on a page meant to be in `language`."""
    pairs = [(m.id, m.string) for m in catalogue("id") if m.id and isinstance(m.id, str)]
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
    api.book(customer, provider, mode="scheduled", startAt=api.slot(provider))
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


def every_line_the_rules_post() -> list[str]:
    """Each line `rules.system_message` can post, in every variant (mode, actor, outcome)."""
    from datetime import timedelta

    from pesan.bookings import rules
    from pesan.bookings.enums import Actor, BookingAction, BookingMode, BookingStatus

    start = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
    policy = rules.Policy()
    lines = []
    for mode in BookingMode:
        facts = rules.Facts(
            status=BookingStatus.pending,
            mode=mode,
            location_kind="villa",
            start_at=start,
            end_at=start + timedelta(hours=1),
            respond_by=start - timedelta(minutes=30),
            eta_at=start + timedelta(minutes=15),
        )
        outcomes = [
            rules.Outcome(BookingStatus.cancelled, ()),
            rules.Outcome(BookingStatus.cancelled, (), late_cancellation=True),
            rules.Outcome(BookingStatus.cancelled, (), excuse="it was not confirmed yet"),
            rules.Outcome(
                BookingStatus.cancelled,
                (),
                excuse=f"the provider is more than {policy.provider_late.seconds // 60} "
                "minutes late",
            ),
        ]
        for action in BookingAction:
            for actor in (Actor.provider, Actor.booker, Actor.system):
                for outcome in outcomes:
                    if outcome.excuse and "late" in outcome.excuse and actor is not Actor.booker:
                        continue  # only a customer cancels because the provider is late
                    for reason in (None, "Hujan <b>deras</b>"):
                        lines.append(
                            rules.system_message(
                                action,
                                facts,
                                outcome,
                                "Asia/Makassar",
                                policy,
                                actor=actor,
                                now=start,
                                reason=reason,
                            )
                        )
    lines.append("Others who could take this booking: Ketut, Wayan. Open the booking to book one.")
    lines.append("Nobody else nearby is free for this booking right now; try another time.")
    return sorted(set(lines))


def test_every_line_the_server_posts_is_shown_in_the_readers_language():
    from pesan.web.system_lines import system_text

    lines = every_line_the_rules_post()
    assert len(lines) > 20
    token = i18n.use("id")
    try:
        for line in lines:
            shown = system_text(line)
            assert shown != line, line  # recognised, so translated
            assert leaks(f"<p>{shown}</p>", "id") == [], shown
            if "Reason: " in line:
                assert shown.endswith("Alasan: Hujan <b>deras</b>")
        accepted = next(x for x in lines if x.startswith("Booking accepted for"))
        assert system_text(accepted).startswith(
            "Pesanan diterima untuk Kam 26 Nov 2026, 14:00 WITA."
        )
        assert (
            system_text("Something else. Booking completed.")
            == "Something else. Booking completed."
        )
    finally:
        i18n.reset(token)


def test_reminders_and_proposals_are_shown_in_the_readers_language():
    from pesan.web.system_lines import system_text

    token = i18n.use("id")
    try:
        reminder = "Reminder: Pijat Bali with Made starts at 14:30 WITA (in 1 hour 30 minutes)."
        assert system_text(reminder) == (
            "Pengingat: Pijat Bali dengan Made mulai pukul 14:30 WITA (1 jam 30 menit lagi)."
        )
        proposal = (
            "Proposed new time: Fri 27 Nov 2026, 10:00 WITA "
            "(instead of Thu 26 Nov 2026, 14:00 WITA)."
        )
        assert system_text(proposal) == (
            "Usulan waktu baru: Jum 27 Nov 2026, 10:00 WITA "
            "(sebagai ganti Kam 26 Nov 2026, 14:00 WITA)."
        )
    finally:
        i18n.reset(token)
    english = i18n.use("en")
    try:
        assert system_text(reminder) == reminder
    finally:
        i18n.reset(english)
