"""The web app's words for the domain's word lists and error codes, marked for the catalogue
(`N_`) and translated where they are shown."""

from typing import Any

from pesan.bookings.enums import BookingAction, BookingStatus, LocationKind
from pesan.providers.enums import Presence
from pesan.roles import Role
from pesan.web.i18n import N_, gettext

STATUS = {
    BookingStatus.pending: N_("Waiting for an answer"),
    BookingStatus.accepted: N_("Accepted"),
    BookingStatus.on_the_way: N_("On the way"),
    BookingStatus.arrived: N_("Arrived"),
    BookingStatus.completed: N_("Completed"),
    BookingStatus.declined: N_("Declined"),
    BookingStatus.cancelled: N_("Cancelled"),
    BookingStatus.expired: N_("Expired: no answer in time"),
    BookingStatus.no_show: N_("No-show: the customer was not there"),
}

# The button that does it: in English exactly "Accept", "Decline", "On the way", ...
ACTION = {
    BookingAction.accept: N_("Accept"),
    BookingAction.decline: N_("Decline"),
    BookingAction.on_the_way: N_("On the way"),
    BookingAction.arrived: N_("Arrived"),
    BookingAction.complete: N_("Complete"),
    BookingAction.cancel: N_("Cancel"),
    BookingAction.no_show: N_("The customer did not come"),
}

PRESENCE = {
    Presence.available: N_("Available now"),
    Presence.busy: N_("Busy"),
    Presence.offline: N_("Offline"),
}
BUSY_UNTIL = N_("Busy until %(time)s")

LOCATION = {
    LocationKind.place: N_("At the place"),
    LocationKind.hotel: N_("Hotel room"),
    LocationKind.villa: N_("Villa"),
    LocationKind.home: N_("Home address"),
}

ROLE = {
    Role.customer: N_("Customer"),
    Role.therapist: N_("Therapist"),
    Role.place: N_("Spa or salon"),
    Role.hotel: N_("Hotel"),
    Role.villa: N_("Villa"),
    Role.agent: N_("Agent"),
    Role.admin: N_("Admin"),
}

# What went wrong, as a person would say it, and what to do next.
PROBLEM = {
    "not_found": N_("We could not find that. The link may be old, or it was removed."),
    "provider_unavailable": N_(
        "This provider is not available right now. Choose a time with Schedule, or pick "
        "someone who is available now."
    ),
    "slot_unavailable": N_("That time was just taken. Please choose another time."),
    "invalid_transition": N_(
        "This booking changed in the meantime. Its card now shows what can be done."
    ),
    "wrong_actor": N_("Only the other side of this booking can do that."),
    "forbidden": N_("Your account cannot do that."),
    "role_not_allowed": N_("Your account cannot do that. Sign in with another account."),
    "invalid_credentials": N_("Wrong email or password. Check both and try again."),
    "account_disabled": N_("This account is disabled. Write to the admins for help."),
    "email_taken": N_("An account with that email already exists. Sign in instead."),
    "rate_limited": N_("Too many tries in a short time. Wait a moment, then try again."),
    "service_unavailable": N_("We cannot reach our database right now. Try again in a minute."),
    "idempotency_key_reused": N_(
        "This form was already sent with other details. Open the form again to book."
    ),
    "validation_failed": N_("Some details are missing or not right. Check the form below."),
    "conversation_not_allowed": N_("You cannot start a chat with this account."),
    "client_message_id_reused": N_("This message was already sent. Reload the chat."),
    "csrf_failed": N_(
        "This form was open too long or came from another site, so we did not send it. "
        "Go back, reload the page and try again."
    ),
    "not_for_you": N_("This page is for another kind of account."),
    "internal_error": N_("Something went wrong on our side. Try again in a moment."),
}
FALLBACK_PROBLEM = N_("Something went wrong. Try again in a moment.")


def problem_text(code: str) -> str:
    """The catalogue's sentence for an error code (the template translates it)."""
    return PROBLEM.get(code, FALLBACK_PROBLEM)


def js_strings() -> dict[str, Any]:
    """The few sentences the page's scripts show, in the visitor's language."""
    return {
        "live": gettext("Connected"),
        "reconnecting": gettext("Reconnecting…"),
        "offline": gettext("You are offline. We will retry when the network is back."),
        "typing": gettext("%(name)s is typing…"),
        "sent": gettext("Sent"),
        "read": gettext("Read"),
        "notSent": gettext("Not sent. Your text is kept: press Send to try again."),
        "left": gettext("%(time)s left to answer"),
        "timeUp": gettext("The time to answer is up"),
        "newRequest": gettext("New booking request"),
        "actionFailed": gettext("That did not work. Check your connection and try again."),
        "bookingUpdate": gettext("Booking update"),
    }
