"""Languages of the web app: gettext catalogues (Babel), money, times and zone labels.

Strings are English in the code and the templates; `translations/<lang>/LC_MESSAGES/
messages.po` holds each language's text. The .po files are compiled in memory at start-up,
so there is no .mo file to forget. Indonesian is the default.
"""

import io
from contextvars import ContextVar, Token
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

from pesan import timeutil

LANGUAGES = ("id", "en")
DEFAULT_LANGUAGE = "id"
LANGUAGE_NAMES = {"id": "Bahasa Indonesia", "en": "English"}
TRANSLATIONS_DIR = Path(__file__).parent / "translations"

# Indonesia's zones have names everyone there uses; elsewhere the IANA name says it.
ZONE_LABELS = {
    "Asia/Jakarta": "WIB",
    "Asia/Pontianak": "WIB",
    "Asia/Makassar": "WITA",
    "Asia/Jayapura": "WIT",
}

_current: ContextVar[Translations | None] = ContextVar("pesan_translations", default=None)
_language: ContextVar[str] = ContextVar("pesan_language", default=DEFAULT_LANGUAGE)


def N_(message: str) -> str:
    """Marks a string for the catalogue; it is translated where it is shown."""
    return message


def parse_language(value: str | None) -> str:
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


@cache
def translations(language: str) -> Translations:
    """The language's catalogue, compiled from its .po file once per process."""
    path = TRANSLATIONS_DIR / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


Used = tuple[Token[Translations | None], Token[str]]


def use(language: str) -> Used:
    """Make `language` the one `gettext` speaks in this thread; returns a reset token."""
    return (_current.set(translations(language)), _language.set(language))


def reset(token: Used) -> None:
    _current.reset(token[0])
    _language.reset(token[1])


def current_language() -> str:
    return _language.get()


def gettext(message: str) -> str:
    current = _current.get()
    return current.gettext(message) if current is not None else message


def ngettext(singular: str, plural: str, n: int) -> str:
    current = _current.get()
    if current is None:
        return singular if n == 1 else plural
    return current.ngettext(singular, plural, n)


def zone_label(timezone: str) -> str:
    """WITA for Asia/Makassar; elsewhere the zone's abbreviation now (as the server writes)."""
    if timezone in ZONE_LABELS:
        return ZONE_LABELS[timezone]
    return datetime.now(ZoneInfo(timezone)).tzname() or timezone


def money(amount: int, currency: str, language: str) -> str:
    """IDR without decimals: "Rp 150.000" in Indonesian, "IDR 150,000" in English."""
    number = format_decimal(amount, format="#,##0", locale=language)
    if currency == "IDR" and language == "id":
        return f"Rp {number}"
    return f"{currency} {number}"


def clock(moment: datetime, timezone: str, language: str) -> str:
    """ "14:30 WITA": the time in the provider's zone, with its label."""
    local = format_datetime(moment, "HH:mm", tzinfo=ZoneInfo(timezone), locale=language)
    return f"{local} {timeutil.zone_label(moment, timezone)}"


def day_name(moment: datetime, timezone: str, language: str) -> str:
    """ "Wednesday 26 November", the provider's day."""
    return format_datetime(moment, "EEEE d MMMM", tzinfo=ZoneInfo(timezone), locale=language)


def day_and_clock(moment: datetime, timezone: str, language: str) -> str:
    """ "Wed 25 Nov, 14:30 WITA"."""
    local = format_datetime(moment, "EEE d MMM, HH:mm", tzinfo=ZoneInfo(timezone), locale=language)
    return f"{local} {timeutil.zone_label(moment, timezone)}"


def language_name(tag: str, language: str) -> str:
    """ "Inggris" for `en` in Indonesian; the tag itself if Babel does not know it."""
    try:
        name = Locale.parse(tag.replace("-", "_")).get_display_name(language)
    except (ValueError, UnknownLocaleError):
        return tag
    return name or tag
