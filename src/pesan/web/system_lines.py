"""The lines the server posts into a booking's chat, in the reader's language.

The booking rules (`bookings/rules.py: system_message`) and effects post them in English
(`originalLanguage: en`). Each is a few sentences from a known set; a line made only of known
sentences is shown translated, sentence by sentence, and anything else is shown as it was
stored. A test builds every line the rules can post and checks that it is recognised.
"""

import re
from datetime import datetime

from babel.dates import format_datetime

from pesan.web.i18n import N_, current_language, gettext

TIME = r"(?P<time>\d\d:\d\d \S+)"
MINUTES = r"(?P<minutes>\d+)"
WHEN = r"(?P<when>[A-Z][a-z]{2} \d\d [A-Z][a-z]{2} \d{4}, \d\d:\d\d \S+)"

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
    ]
]
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
                if "when" in values:
                    values["when"] = _when(values["when"])
                parts.append(gettext(text) % values if values else gettext(text))
                position = found.end()
                break
        else:
            return content
    translated = " ".join(parts)
    return f"{translated} {gettext(REASON_TEXT)} {reason}" if mark else translated
