"""The lines the server posts into a booking's chat, in the reader's language.

The booking rules (`bookings/rules.py: system_message`) and effects post them in English
(`originalLanguage: en`). Each is a few sentences from a known set; a line made only of known
sentences is shown translated, sentence by sentence, and anything else is shown as it was
stored. A test builds every line the rules can post and checks that it is recognised.
"""

import re
from datetime import datetime

from babel.dates import format_datetime

from pesan.web.i18n import N_, current_language, gettext, ngettext

TIME = r"(?P<time>\d\d:\d\d \S+)"
MINUTES = r"(?P<minutes>\d+)"
WHEN = r"(?P<when>[A-Z][a-z]{2} \d\d [A-Z][a-z]{2} \d{4}, \d\d:\d\d \S+)"
BEFORE = r"(?P<before>[A-Z][a-z]{2} \d\d [A-Z][a-z]{2} \d{4}, \d\d:\d\d \S+)"
SPAN = r"(?P<span>(?:\d+ hours?)?(?: ?\d+ minutes)?)"

SENTENCES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(pattern), text)
    for pattern, text in [
        (r"Booking accepted\.", N_("Booking accepted.")),
        (rf"Booking accepted for {WHEN}\.", N_("Booking accepted for %(when)s.")),
        (
            rf"Cancelling after {TIME} \({MINUTES} minutes before the start\) is recorded as a "
            r"late cancellation, for either side\.",
            N_(
                "Cancelling after %(time)s (%(minutes)s minutes before the start) is recorded "
                "as a late cancellation, for either side."
            ),
        ),
        (
            r"Once accepted, cancelling is recorded as a late cancellation, for either side\.",
            N_("Once accepted, cancelling is recorded as a late cancellation, for either side."),
        ),
        (
            rf"If the provider is more than {MINUTES} minutes late, the customer may cancel "
            r"without penalty\.",
            N_(
                "If the provider is more than %(minutes)s minutes late, the customer may "
                "cancel without penalty."
            ),
        ),
        (
            rf"A no-show can be recorded from {TIME}\.",
            N_("A no-show can be recorded from %(time)s."),
        ),
        (
            rf"A no-show can be recorded {MINUTES} minutes after arrival\.",
            N_("A no-show can be recorded %(minutes)s minutes after arrival."),
        ),
        (r"Booking declined\.", N_("Booking declined.")),
        (
            r"Booking declined automatically: the provider accepted another booking at this "
            r"time\.",
            N_(
                "Booking declined automatically: the provider accepted another booking at "
                "this time."
            ),
        ),
        (
            rf"On the way, arriving about {TIME} \(in {MINUTES} minutes\)\.",
            N_("On the way, arriving about %(time)s (in %(minutes)s minutes)."),
        ),
        (r"Arrived\.", N_("Arrived.")),
        (
            rf"Booking cancelled by the customer: a late cancellation \(after {TIME}\)\.",
            N_("Booking cancelled by the customer: a late cancellation (after %(time)s)."),
        ),
        (
            rf"Booking cancelled by the provider: a late cancellation \(after {TIME}\)\.",
            N_("Booking cancelled by the provider: a late cancellation (after %(time)s)."),
        ),
        (
            r"Booking cancelled by the customer, without penalty: it was not confirmed yet\.",
            N_("Booking cancelled by the customer, without penalty: it was not confirmed yet."),
        ),
        (
            r"Booking cancelled by the provider, without penalty: it was not confirmed yet\.",
            N_("Booking cancelled by the provider, without penalty: it was not confirmed yet."),
        ),
        (
            rf"Booking cancelled by the customer, without penalty: the provider is more than "
            rf"{MINUTES} minutes late\.",
            N_(
                "Booking cancelled by the customer, without penalty: the provider is more "
                "than %(minutes)s minutes late."
            ),
        ),
        (
            r"Booking cancelled by the customer, in time: without penalty\.",
            N_("Booking cancelled by the customer, in time: without penalty."),
        ),
        (
            r"Booking cancelled by the provider, in time: without penalty\.",
            N_("Booking cancelled by the provider, in time: without penalty."),
        ),
        (r"Booking completed\.", N_("Booking completed.")),
        (
            rf"No-show recorded: the customer was not there {MINUTES} minutes after the start "
            rf"\({TIME}\)\.",
            N_(
                "No-show recorded: the customer was not there %(minutes)s minutes after the "
                "start (%(time)s)."
            ),
        ),
        (
            rf"Booking expired: the provider did not answer by {TIME}\.",
            N_("Booking expired: the provider did not answer by %(time)s."),
        ),
        (r"This counts against nobody\.", N_("This counts against nobody.")),
        (
            r"Others who could take this booking: (?P<names>.+?)\. Open the booking to book one\.",
            N_("Others who could take this booking: %(names)s. Open the booking to book one."),
        ),
        (
            r"Nobody else nearby is free for this booking right now; try another time\.",
            N_("Nobody else nearby is free for this booking right now; try another time."),
        ),
        (
            rf"Proposed new time: {WHEN} \(instead of {BEFORE}\)\.",
            N_("Proposed new time: %(when)s (instead of %(before)s)."),
        ),
        (
            rf"The proposed new time was declined; the booking stays at {WHEN}\.",
            N_("The proposed new time was declined; the booking stays at %(when)s."),
        ),
        (rf"New time agreed: {WHEN}\.", N_("New time agreed: %(when)s.")),
        (
            rf"Reminder: (?P<service>.+?) with (?P<provider>.+?) starts at {TIME} \(in {SPAN}\)\.",
            N_("Reminder: %(service)s with %(provider)s starts at %(time)s (in %(span)s)."),
        ),
    ]
]
SPAN_PARTS = re.compile(r"^(?:(?P<hours>\d+) hours?)? ?(?:(?P<minutes>\d+) minutes)?$")
REASON_MARK = " Reason: "
REASON_TEXT = N_("Reason:")


def _when(text: str) -> str:
    """ "Thu 26 Nov 2026, 14:30 WITA" as the reader's language writes a day and a time."""
    stamp, _, zone = text.rpartition(" ")
    try:
        local = datetime.strptime(stamp, "%a %d %b %Y, %H:%M")
    except ValueError:
        return text
    return f"{format_datetime(local, 'EEE d MMM y, HH:mm', locale=current_language())} {zone}"


def _span(text: str) -> str:
    """ "1 hour 30 minutes" in the reader's words."""
    found = SPAN_PARTS.match(text)
    if not found:
        return text
    parts = []
    if found["hours"]:
        hours = int(found["hours"])
        parts.append(ngettext("%(num)s hour", "%(num)s hours", hours) % {"num": hours})
    if found["minutes"]:
        minutes = int(found["minutes"])
        parts.append(ngettext("%(num)s minute", "%(num)s minutes", minutes) % {"num": minutes})
    return " ".join(parts) or text


def system_text(content: str) -> str:
    """The line in the reader's language, or exactly as stored if it is not one we know."""
    head, mark, reason = content.partition(REASON_MARK)
    parts = []
    position = 0
    while position < len(head):
        if head[position] == " ":
            position += 1
            continue
        for pattern, text in SENTENCES:
            found = pattern.match(head, position)
            if found:
                values = found.groupdict()
                for key in ("when", "before"):
                    if key in values:
                        values[key] = _when(values[key])
                if "span" in values:
                    values["span"] = _span(values["span"])
                parts.append(gettext(text) % values if values else gettext(text))
                position = found.end()
                break
        else:
            return content
    translated = " ".join(parts)
    return f"{translated} {gettext(REASON_TEXT)} {reason}" if mark else translated
