"""The bookings' periodic work: expire unanswered requests, remind before accepted bookings.

Each function looks for due bookings and moves each one in a transaction of its own, with a
compare-and-set, so every server process may run it at the same time and each effect still
happens once (see docs/decisions.md).
"""

import logging
from datetime import datetime

from sqlalchemy import select, update

from pesan.bookings import rules
from pesan.bookings.enums import Actor, BookingAction, BookingStatus
from pesan.bookings.models import Booking
from pesan.bookings.service import post_system_message, transition
from pesan.db import Database
from pesan.errors import Conflict
from pesan.timeutil import clock_in

log = logging.getLogger("pesan.bookings")
BATCH = 200


def expire_due(db: Database, now: datetime, policy: rules.Policy) -> int:
    """Every pending request whose answer window has closed becomes `expired`."""
    with db.reader() as session:
        due = session.scalars(
            select(Booking.id)
            .where(Booking.status == BookingStatus.pending, Booking.respond_by <= now)
            .order_by(Booking.respond_by)
            .limit(BATCH)
        ).all()
    expired = 0
    for booking_id in due:
        try:
            with db.transaction() as session:
                transition(session, booking_id, BookingAction.expire, Actor.system, now, policy)
            expired += 1
        except Conflict:
            continue  # answered, cancelled or expired by another process meanwhile
    return expired


def remind_due(db: Database, now: datetime, policy: rules.Policy) -> int:
    """A system message `reminder_lead` before each accepted booking starts, once."""
    with db.reader() as session:
        due = session.scalars(
            select(Booking.id)
            .where(
                Booking.status == BookingStatus.accepted,
                Booking.reminded_at.is_(None),
                Booking.start_at > now,
                Booking.start_at <= now + policy.reminder_lead,
            )
            .order_by(Booking.start_at)
            .limit(BATCH)
        ).all()
    reminded = 0
    for booking_id in due:
        with db.transaction() as session:
            claimed = session.execute(
                update(Booking)
                .where(
                    Booking.id == booking_id,
                    Booking.status == BookingStatus.accepted,
                    Booking.reminded_at.is_(None),
                )
                .values(reminded_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
            if claimed != 1:
                continue  # reminded by another process, or no longer accepted
            booking = session.get(Booking, booking_id)
            assert booking is not None
            minutes = max(1, round((booking.start_at - now).total_seconds() / 60))
            text = (
                f"Reminder: {booking.service_name} with {booking.provider_name} starts at "
                f"{clock_in(booking.start_at, booking.timezone)} (in {_span(minutes)})."
            )
            post_system_message(session, booking, text, to_actor=Actor.system, now=now)
            reminded += 1
    return reminded


def _span(minutes: int) -> str:
    if minutes < 60:
        return f"{minutes} minutes"
    hours, rest = divmod(minutes, 60)
    text = f"{hours} hour{'s' if hours > 1 else ''}"
    return f"{text} {rest} minutes" if rest else text
