"""Book Now and the booking lifecycle. Each public function is one use case inside the
caller's transaction, with `now` and the policy passed in, so the server itself (expiry,
reminders) moves bookings exactly as a party does."""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pesan.accounts import service as accounts
from pesan.admin import service as admin
from pesan.auth import Caller, ensure_role, ensure_visible
from pesan.bookings import availability, rules
from pesan.bookings.enums import (
    ACTIVE,
    FINAL,
    Actor,
    BookingAction,
    BookingMode,
    BookingStatus,
    ProposalStatus,
)
from pesan.bookings.models import NO_OVERLAP, Booking, IdempotencyKey, RescheduleProposal
from pesan.bookings.schemas import BookingOut, BookNowIn, BookNowOut, PolicyOut
from pesan.bookings.views import BookingRow, booking_out, facts_of
from pesan.chat import service as chat
from pesan.chat import views as chat_views
from pesan.chat.enums import MessageType
from pesan.chat.views import ConversationParties, Party
from pesan.db import Prepared, PreparedClaim, connection_of, table_of
from pesan.errors import (
    Conflict,
    Forbidden,
    NotFound,
    SlotUnavailable,
    ValidationFailed,
    constraint_name,
)
from pesan.ids import new_id
from pesan.live import events
from pesan.providers import service as providers
from pesan.providers.enums import Presence
from pesan.providers.schedule import Refusal
from pesan.roles import BOOKERS
from pesan.schemas import indented_lines, one_line
from pesan.timeutil import day_and_clock_in, rfc3339, utcnow

# ---- Book Now --------------------------------------------------------------------------------


@dataclass
class BookNowResult:
    answer: BookNowOut
    replayed: bool


def book_now(
    session: Session,
    caller: Caller,
    body: BookNowIn,
    idempotency_key: str | None,
    now: datetime,
    policy: rules.Policy,
) -> BookNowResult:
    """Booking, conversation, booking message and admin notification: all of them or none.

    Written with prebuilt Core statements on one connection and answered from what it wrote:
    about a dozen statements and no ORM unit of work. On SQLite they are `db.Prepared`, run
    straight on the cursor (SQLAlchemy's execution took more Python than SQLite took to run
    them), and the booking, profile and service it maps are plain objects, not ORM ones.
    """
    ensure_role(caller, BOOKERS, "book")
    connection = connection_of(session)
    booking_id = new_id()
    if idempotency_key:
        request_hash = _request_hash(body)
        if not _claim(connection, caller.id, idempotency_key, request_hash, booking_id):
            replay = _replay(session, caller, idempotency_key, request_hash, policy)
            return BookNowResult(replay, replayed=True)

    provider, service, start_at = _check_request(session, connection, body, now)
    people = accounts.names_and_roles(connection, caller.id, provider.user_id)
    booker, provider_user = (Party(*people[uid]) for uid in (caller.id, provider.user_id))
    end_at = start_at + timedelta(minutes=service.duration_minutes)
    blocked_from, blocked_until = availability.hold_of(provider, start_at, end_at)
    conversation = chat.conversation_between(session, booker, provider_user)
    row = {
        "id": booking_id,
        "status": BookingStatus.pending.value,
        "mode": body.mode.value,
        "customer_id": booker.id,
        "customer_name": booker.name,
        "booker_role": booker.role,
        "provider_id": provider.user_id,
        "provider_name": provider.name,
        "timezone": provider.timezone,
        "service_id": service.id,
        "service_name": service.name,
        "duration_minutes": service.duration_minutes,
        "start_at": start_at,
        "end_at": end_at,
        "blocked_from": blocked_from,
        "blocked_until": blocked_until,
        "location_kind": body.location.kind.value,
        "location_address": body.location.address,
        "location_room": body.location.room,
        "note": body.note,
        "guest_name": body.guest_name,
        "price_amount": service.price_amount,
        "currency": service.currency,
        "respond_by": rules.respond_by(body.mode, now, start_at, policy),
        "eta_at": None,
        "reminded_at": None,
        "status_reason": None,
        "ended_by": None,
        "late_cancellation": False,
        "counts_against": None,
        "conversation_id": conversation.id,
        "created_at": now,
        "updated_at": now,
    }
    # What the mappers below read: the row as attributes (an ORM object would cost ~60
    # instrumented attribute sets, for an object that is never added to the session).
    booking = SimpleNamespace(**row)
    _insert(session, connection, row, provider, now)
    if booking.mode == BookingMode.now:
        providers.hold_for_work(session, provider.user_id, booking.id, booking.end_at, now)
    parties = ConversationParties(
        conversation.id,
        conversation.created_at,
        sorted((booker, provider_user), key=attrgetter("id")),
    )
    message = chat.post_message(
        session,
        parties,
        sender=booker,
        recipient=provider_user,
        content=describe_request(booking, policy),
        message_type=MessageType.booking,
        booking_id=booking.id,
        original_language="en",
        now=now,
    )
    admin.notify(
        session,
        kind="booking.created",
        title=one_line(f"New booking: {booking.customer_name} → {booking.provider_name}"),
        body=message.content,
        booking_id=booking.id,
        conversation_id=conversation.id,
    )
    out = booking_out(booking)
    events.record(
        session, [booking.customer_id, booking.provider_id], "booking.created", event_data(out)
    )
    unread = chat_views.unread_count(connection, conversation.id, caller.id)
    answer = BookNowOut(
        booking=out,
        conversation=chat_views.conversation_out(parties, message, unread),
        message=message,
        policy=policy_out(booking, policy),
    )
    return BookNowResult(answer, replayed=False)


def _request_hash(body: BookNowIn) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


_keys = table_of(IdempotencyKey)
# The claim is the insert itself: a new key costs one statement; a key already stored (or
# being stored by a concurrent request, which this one waits for) inserts nothing.
_CLAIM = PreparedClaim(_keys, ["user_id", "key"])
_CLAIMED = select(_keys.c.request_hash, _keys.c.booking_id).where(
    _keys.c.user_id == bindparam("uid"), _keys.c.key == bindparam("key")
)


def _claim(
    connection: Connection, user_id: str, key: str, request_hash: str, booking_id: str
) -> bool:
    """Claim the Idempotency-Key for the booking about to be made, before anything else.

    The key row refers to the booking (checked at commit). A concurrent request with the same
    key waits on the claim until the first commits, then answers the first one's booking;
    True means the claim is ours. If this request fails, the claim rolls back with it.
    """
    row = {
        "user_id": user_id,
        "key": key,
        "request_hash": request_hash,
        "booking_id": booking_id,
        "created_at": utcnow(),
    }
    return _CLAIM.claim(connection, row)


def _replay(
    session: Session, caller: Caller, key: str, request_hash: str, policy: rules.Policy
) -> BookNowOut:
    """The first answer again, read back; or 409 if the key came with another body."""
    connection = session.connection()
    claimed = connection.execute(_CLAIMED, {"uid": caller.id, "key": key}).one()
    if claimed.request_hash != request_hash:
        raise Conflict(
            "This Idempotency-Key was used for a different request.",
            code="idempotency_key_reused",
        )
    booking = session.get(Booking, claimed.booking_id)
    assert booking is not None
    message = chat_views.booking_message(session, booking.id)
    assert message is not None
    conversation = chat_views.conversation_row(connection, booking.conversation_id)
    return BookNowOut(
        booking=booking_out(booking),
        conversation=chat_views.conversation_for(session, caller.id, conversation),
        message=chat_views.message_out(message),
        policy=policy_out(booking, policy),
    )


def _check_request(
    session: Session, connection: Connection, body: BookNowIn, now: datetime
) -> tuple[SimpleNamespace, SimpleNamespace, datetime]:
    """The provider, the service and the start time, or the problem with the request."""
    # A `now` booking reads presence, then changes it: one at a time per provider.
    provider, service = providers.offer_of(
        connection, body.provider_id, body.service_id, lock=body.mode == BookingMode.now
    )
    if service is None:
        raise ValidationFailed("serviceId", "not a service this provider offers")
    try:
        rules.check_location(body.location.kind, body.location.address, body.location.room)
        start_at = rules.resolve_start(body.mode, body.start_at, now)
    except rules.RequestProblem as problem:
        raise ValidationFailed(problem.field, problem.message) from None
    duration = timedelta(minutes=service.duration_minutes)
    if body.mode == BookingMode.now:
        if provider.presence != Presence.available:
            raise Conflict(
                f"{provider.name} is not available right now; book a time instead.",
                code="provider_unavailable",
            )
        if not availability.now_is_free(session, provider, duration, now):
            raise slot_unavailable(session, provider, duration, now, now, Refusal.taken)
        return provider, service, start_at
    refused = availability.refusal(session, provider, duration, start_at, now)
    if refused is not None:
        raise slot_unavailable(session, provider, duration, start_at, now, refused)
    return provider, service, start_at


REFUSALS = {
    Refusal.too_soon: "{name} needs more notice for that time.",
    Refusal.too_far: "{name} does not take bookings that far ahead.",
    Refusal.outside_hours: "{name} does not start a booking at that time.",
    Refusal.taken: "{name} is already booked then.",
}


def slot_unavailable(
    session: Session,
    provider: providers.ProfileRow,
    duration: timedelta,
    wanted: datetime,
    now: datetime,
    why: Refusal,
    except_booking: str | None = None,
) -> SlotUnavailable:
    free = availability.nearest_free_starts(
        session, provider, duration, wanted, now, except_booking=except_booking
    )
    detail = REFUSALS[why].format(name=provider.name)
    if free:
        detail += " The nearest free start times are in freeStartTimes."
    return SlotUnavailable(detail, [rfc3339(s) for s in free])


_INSERT = Prepared(insert(table_of(Booking)))


def _insert(
    session: Session,
    connection: Connection,
    row: dict[str, Any],
    provider: providers.ProfileRow,
    now: datetime,
) -> None:
    """Insert the booking. On PostgreSQL in a savepoint: a concurrent booking of the same time
    loses to the exclusion constraint and gets a 409 with the free times around it. SQLite
    has no such constraint and needs none (its writers are serialised, and the held-time
    check ran in this same write)."""
    if connection.dialect.name != "postgresql":
        _INSERT.run(connection, row)  # every column given: Prepared applies no defaults
        return
    try:
        with session.begin_nested():
            # Asked again: this emits the SAVEPOINT.
            session.connection().execute(_INSERT.statement, row)
    except IntegrityError as exc:
        if constraint_name(exc) != NO_OVERLAP:
            raise
        duration = row["end_at"] - row["start_at"]
        raise slot_unavailable(
            session, provider, duration, row["start_at"], now, Refusal.taken
        ) from None


def describe_request(booking: BookingRow, policy: rules.Policy) -> str:
    """The booking card's text, with the time in the provider's zone.

    Each line is `Label: value` and no value can make a line of its own: one-line values are
    kept to one line whatever the row holds, and a note's own lines are indented under
    `Note:`.
    """
    when = (
        "as soon as possible"
        if booking.mode == BookingMode.now
        else day_and_clock_in(booking.start_at, booking.timezone)
    )
    room, address = booking.location_room or "", booking.location_address or ""
    where = {
        "place": "at the place",
        "hotel": f"hotel room {one_line(room)}",
        "villa": f"villa room {one_line(room)}",
        "home": f"home: {one_line(address)}",
    }[booking.location_kind]
    price = f"{booking.currency} {booking.price_amount:,}".replace(",", ".")
    parts = [
        f"Booking request: {one_line(booking.service_name)} ({booking.duration_minutes} min)",
        f"When: {when}",
        f"Where: {where}",
        f"Price: {price}",
    ]
    if booking.guest_name:
        parts.append(f"Guest: {one_line(booking.guest_name)}")
    if booking.note:
        parts.append(f"Note: {indented_lines(booking.note)}")
    if booking.respond_by is not None:
        parts.append(f"Answer by: {day_and_clock_in(booking.respond_by, booking.timezone)}")
    parts.append(f"Policy: {rules.policy_summary(facts_of(booking), policy, booking.timezone)}")
    return "\n".join(parts)


def policy_out(booking: BookingRow, policy: rules.Policy) -> PolicyOut:
    facts = facts_of(booking)
    return PolicyOut(
        summary=rules.policy_summary(facts, policy, booking.timezone),
        late_cancellation_from=rules.late_cancellation_from(facts, policy),
        no_show_from=rules.no_show_from(facts, policy),
        provider_late_minutes=int(policy.provider_late.total_seconds() // 60),
    )


def event_data(model: Any) -> dict[str, Any]:
    data: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    return data


# ---- the lifecycle ---------------------------------------------------------------------------


def change_status(
    session: Session,
    caller: Caller,
    booking_id: str,
    action: BookingAction,
    now: datetime,
    policy: rules.Policy,
    *,
    reason: str | None = None,
    eta_minutes: int | None = None,
) -> BookingOut:
    """A party moves its booking along its lifecycle."""
    booking = session.get(Booking, booking_id)
    if booking is None:
        raise NotFound("No such booking.")
    ensure_visible(caller, (booking.customer_id, booking.provider_id), "booking")
    actor = party_of(caller, booking)
    return transition(
        session, booking_id, action, actor, now, policy, reason=reason, eta_minutes=eta_minutes
    )


def party_of(caller: Caller, booking: Booking) -> Actor:
    if caller.id == booking.provider_id:
        return Actor.provider
    if caller.id == booking.customer_id:
        return Actor.booker
    raise Forbidden("Only the parties of this booking can change it.")


@dataclass
class Change:
    """One status change being carried out: what each effect needs to know."""

    session: Session
    booking: Booking
    action: BookingAction
    actor: Actor
    outcome: rules.Outcome
    now: datetime
    policy: rules.Policy
    reason: str | None


def transition(
    session: Session,
    booking_id: str,
    action: BookingAction,
    actor: Actor,
    now: datetime,
    policy: rules.Policy,
    *,
    reason: str | None = None,
    eta_minutes: int | None = None,
) -> BookingOut:
    """Move a booking as `actor` (a party, or the server itself) and carry out every effect
    the rules declare for that move, in the caller's transaction. Exactly once: the update is
    a compare-and-set on the status read, so of two racing moves only one changes anything."""
    booking = session.get(Booking, booking_id, with_for_update=True)
    if booking is None:
        raise NotFound("No such booking.")
    facts = facts_of(booking)
    try:
        outcome = rules.decide(action, facts, actor, now, policy)
    except rules.WrongActor as exc:
        raise Forbidden(str(exc), code="wrong_actor") from None
    except rules.InvalidTransition as exc:
        raise Conflict(str(exc), code="invalid_transition") from None
    values: dict[str, Any] = {"status": outcome.target.value, "updated_at": now}
    if eta_minutes is not None:
        values["eta_at"] = now + timedelta(minutes=eta_minutes)
    if reason is not None:
        values["status_reason"] = reason
    if outcome.target in FINAL:
        values.update(
            ended_by=actor.value,
            late_cancellation=outcome.late_cancellation,
            counts_against=outcome.counts_against.value if outcome.counts_against else None,
        )
    if action is BookingAction.accept and booking.start_at - now <= policy.reminder_lead:
        values["reminded_at"] = now  # the acceptance already says when: no reminder on top
    changed = session.execute(
        update(Booking)
        .where(Booking.id == booking.id, Booking.status == facts.status.value)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if changed != 1:
        raise Conflict("The booking changed meanwhile; reload it.", code="invalid_transition")
    session.refresh(booking)
    change = Change(session, booking, action, actor, outcome, now, policy, reason)
    for effect in outcome.effects:
        EFFECTS[effect](change)
    events.record(
        session,
        [booking.customer_id, booking.provider_id],
        "booking.updated",
        event_data(booking_out(booking)),
    )
    return booking_out(booking)


# ---- the effects the rules declare -----------------------------------------------------------


def _said(change: Change) -> str:
    """The move, in the words of the chat (and of the admin inbox)."""
    return rules.system_message(
        change.action,
        facts_of(change.booking),
        change.outcome,
        change.booking.timezone,
        change.policy,
        actor=change.actor,
        now=change.now,
        reason=change.reason,
    )


def _tell(change: Change) -> None:
    post_system_message(
        change.session, change.booking, _said(change), to_actor=change.actor, now=change.now
    )


def post_system_message(
    session: Session, booking: Booking, text: str, *, to_actor: Actor, now: datetime
) -> None:
    """A system message in the booking's chat, addressed (for unread counts) to the party who
    did not act: the booker when the provider or the server acts, the provider otherwise."""
    tell = booking.provider_id if to_actor is Actor.booker else booking.customer_id
    conversation = chat_views.conversation_parties(session.connection(), booking.conversation_id)
    assert conversation is not None, "a booking has its conversation"
    chat.post_message(
        session,
        conversation,
        sender=None,
        recipient=conversation.party(tell),
        content=text,
        message_type=MessageType.system,
        booking_id=booking.id,
        original_language="en",
        now=now,
    )


def _notify_admin(change: Change) -> None:
    booking = change.booking
    admin.notify(
        change.session,
        kind=f"booking.{booking.status}",
        title=f"Booking {booking.status.replace('_', ' ')}: "
        f"{booking.customer_name} → {booking.provider_name}",
        body=_said(change),
        booking_id=booking.id,
        conversation_id=booking.conversation_id,
    )


def _hold_provider(change: Change) -> None:
    booking = change.booking
    if booking.mode != BookingMode.now:
        return
    until = rules.expected_end(
        facts_of(booking), change.now, timedelta(minutes=booking.duration_minutes)
    )
    providers.hold_for_work(change.session, booking.provider_id, booking.id, until, change.now)


def _release_provider(change: Change) -> None:
    booking = change.booking
    if booking.mode == BookingMode.now:
        providers.release_work(change.session, booking.provider_id, booking.id, change.now)


def _decline_overlapping(change: Change) -> None:
    """Other requests the provider holds for the same time end: the provider chose this one."""
    booking = change.booking
    others = change.session.scalars(
        select(Booking.id).where(
            Booking.provider_id == booking.provider_id,
            Booking.id != booking.id,
            Booking.status == BookingStatus.pending,
            Booking.blocked_from < booking.blocked_until,
            Booking.blocked_until > booking.blocked_from,
        )
    ).all()
    for other in others:
        transition(
            change.session, other, BookingAction.decline, Actor.system, change.now, change.policy
        )


def _offer_alternatives(change: Change) -> None:
    booking = change.booking
    found = availability.alternatives(
        change.session,
        provider_id=booking.provider_id,
        mode=BookingMode(booking.mode),
        start=booking.start_at,
        duration_minutes=booking.duration_minutes,
        price_amount=booking.price_amount,
        now=change.now,
    )
    if found:
        names = ", ".join(p.name for p in found)
        text = f"Others who could take this booking: {names}. Open the booking to book one."
    else:
        text = "Nobody else nearby is free for this booking right now; try another time."
    post_system_message(change.session, booking, text, to_actor=Actor.system, now=change.now)


def _withdraw_proposals(change: Change) -> None:
    """A booking that ended can no longer move: its open proposal ends with it."""
    close_open_proposals(change.session, change.booking.id, change.now)


def close_open_proposals(session: Session, booking_id: str, now: datetime) -> None:
    session.execute(
        update(RescheduleProposal)
        .where(
            RescheduleProposal.booking_id == booking_id,
            RescheduleProposal.status == ProposalStatus.pending,
        )
        .values(status=ProposalStatus.withdrawn, decided_at=now)
        .execution_options(synchronize_session=False)
    )


EFFECTS: dict[rules.Effect, Callable[[Change], None]] = {
    rules.Effect.tell: _tell,
    rules.Effect.notify_admin: _notify_admin,
    rules.Effect.hold_provider: _hold_provider,
    rules.Effect.release_provider: _release_provider,
    rules.Effect.decline_overlapping: _decline_overlapping,
    rules.Effect.offer_alternatives: _offer_alternatives,
    rules.Effect.withdraw_proposals: _withdraw_proposals,
}

__all__ = ["ACTIVE", "BookNowResult", "book_now", "change_status", "transition"]
