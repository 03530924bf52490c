"""Book Now and the booking lifecycle. Each function is one use case inside one transaction."""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pesan.accounts import service as accounts
from pesan.admin import service as admin
from pesan.auth import Caller, ensure_role, ensure_visible
from pesan.bookings import rules
from pesan.bookings.enums import Actor, BookingAction, BookingStatus
from pesan.bookings.models import Booking, IdempotencyKey
from pesan.bookings.schemas import BookingOut, BookNowIn, BookNowOut, Location
from pesan.chat import service as chat
from pesan.chat import views as chat_views
from pesan.chat.enums import MessageType
from pesan.errors import Conflict, Forbidden, NotFound, ValidationFailed
from pesan.ids import is_valid, new_id
from pesan.live import events
from pesan.providers import service as providers
from pesan.providers.models import ProviderProfile, Service
from pesan.roles import BOOKERS
from pesan.schemas import Money, indented_lines, one_line
from pesan.timeutil import utcnow


def booking_out(booking: Booking) -> BookingOut:
    return BookingOut(
        id=booking.id,
        status=booking.status,
        mode=booking.mode,
        customer_id=booking.customer_id,
        customer_name=booking.customer_name,
        provider_id=booking.provider_id,
        provider_name=booking.provider_name,
        service_id=booking.service_id,
        service_name=booking.service_name,
        duration_minutes=booking.duration_minutes,
        start_at=booking.start_at,
        end_at=booking.end_at,
        location=Location(
            kind=booking.location_kind,
            address=booking.location_address,
            room=booking.location_room,
        ),
        note=booking.note,
        guest_name=booking.guest_name,
        price=Money(amount=booking.price_amount, currency=booking.currency),
        eta_at=booking.eta_at,
        status_reason=booking.status_reason,
        conversation_id=booking.conversation_id,
        created_at=booking.created_at,
        updated_at=booking.updated_at,
    )


@dataclass
class BookNowResult:
    answer: BookNowOut
    replayed: bool


def _request_hash(body: BookNowIn) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _answer(session: Session, viewer_id: str, booking: Booking) -> BookNowOut:
    message = chat_views.booking_message(session, booking.id)
    conversation = chat_views.get_conversation_row(session, booking.conversation_id)
    assert message is not None
    return BookNowOut(
        booking=booking_out(booking),
        conversation=chat_views.conversation_for(session, viewer_id, conversation),
        message=chat_views.message_out(message),
    )


def _replay(session: Session, caller: Caller, key: str, request_hash: str) -> BookNowOut | None:
    record = session.get(IdempotencyKey, (caller.id, key))
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise Conflict(
            "This Idempotency-Key was used for a different request.",
            code="idempotency_key_reused",
        )
    booking = session.get(Booking, record.booking_id)
    assert booking is not None
    return _answer(session, caller.id, booking)


def book_now(
    session: Session, caller: Caller, body: BookNowIn, idempotency_key: str | None = None
) -> BookNowResult:
    """Booking, conversation, booking message and admin notification: all of them or none."""
    ensure_role(caller, BOOKERS, "book")
    request_hash = _request_hash(body)
    if idempotency_key:
        replay = _replay(session, caller, idempotency_key, request_hash)
        if replay is not None:
            return BookNowResult(replay, replayed=True)

    now = utcnow()
    provider, service, start_at = _check_request(session, body, now)
    booker = accounts.get_user(session, caller.id)
    provider_user = accounts.get_user(session, provider.user_id)

    conversation = chat.conversation_between(session, booker, provider_user)
    booking = Booking(
        id=new_id(),
        status=BookingStatus.pending,
        mode=body.mode,
        customer_id=booker.id,
        customer_name=booker.name,
        booker_role=booker.role,
        provider_id=provider.user_id,
        provider_name=provider.name,
        service_id=service.id,
        service_name=service.name,
        duration_minutes=service.duration_minutes,
        start_at=start_at,
        end_at=start_at + timedelta(minutes=service.duration_minutes),
        location_kind=body.location.kind,
        location_address=body.location.address,
        location_room=body.location.room,
        note=body.note,
        guest_name=body.guest_name,
        price_amount=service.price_amount,
        currency=service.currency,
        conversation_id=conversation.id,
        created_at=now,
        updated_at=now,
    )
    if idempotency_key:
        replay = _insert_claiming(session, caller, booking, idempotency_key, request_hash)
        if replay is not None:
            return BookNowResult(replay, replayed=True)
    else:
        session.add(booking)
        session.flush()
    message = chat.post_message(
        session,
        conversation,
        sender=booker,
        recipient=provider_user,
        content=describe_request(booking, provider.timezone),
        message_type=MessageType.booking,
        booking_id=booking.id,
        original_language="en",
    )
    admin.notify(
        session,
        kind="booking.created",
        title=one_line(f"New booking: {booking.customer_name} → {booking.provider_name}"),
        body=message.content,
        booking_id=booking.id,
        conversation_id=conversation.id,
    )
    events.record(
        session,
        [booking.customer_id, booking.provider_id],
        "booking.created",
        _json(booking_out(booking)),
    )
    answer = BookNowOut(
        booking=booking_out(booking),
        conversation=chat_views.conversation_for(session, caller.id, conversation),
        message=chat_views.message_out(message),
    )
    return BookNowResult(answer, replayed=False)


def _check_request(
    session: Session, body: BookNowIn, now: datetime
) -> tuple[ProviderProfile, Service, datetime]:
    """The provider, the service and the start time, or the problem with the request."""
    provider = providers.get_profile(session, body.provider_id)
    service = providers.get_service(session, provider.user_id, body.service_id)
    if service is None:
        raise ValidationFailed("serviceId", "not a service this provider offers")
    try:
        rules.check_location(body.location.kind, body.location.address, body.location.room)
        start_at = rules.resolve_start(body.mode, body.start_at, now)
    except rules.RequestProblem as problem:
        raise ValidationFailed(problem.field, problem.message) from None
    if body.mode == "now" and provider.presence != "available":
        raise Conflict(
            f"{provider.name} is not available right now; book a time instead.",
            code="provider_unavailable",
        )
    return provider, service, start_at


def _insert_claiming(
    session: Session, caller: Caller, booking: Booking, key: str, request_hash: str
) -> BookNowOut | None:
    """Insert the booking and claim the key for it (the key row refers to the booking).

    A concurrent request with the same key waits on the claim until the first commits, then
    undoes its own booking and answers the first one's: None means the claim is ours.
    """
    try:
        with session.begin_nested():
            session.add(booking)
            session.flush()
            session.add(
                IdempotencyKey(
                    user_id=caller.id, key=key, request_hash=request_hash, booking_id=booking.id
                )
            )
            session.flush()
    except IntegrityError:
        replay = _replay(session, caller, key, request_hash)
        if replay is None:
            raise
        return replay
    return None


def describe_request(booking: Booking, timezone: str) -> str:
    """The booking card's text, with the time in the provider's zone.

    Each line is `Label: value` and no value can make a line of its own: one-line values are
    kept to one line, and a note's own lines are indented under `Note:`.
    """
    local = booking.start_at.astimezone(ZoneInfo(timezone))
    when = (
        "as soon as possible"
        if booking.mode == "now"
        else local.strftime(f"%a %d %b %Y %H:%M ({timezone})")
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
    return "\n".join(parts)


def _json(model: Any) -> dict[str, Any]:
    data: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    return data


def get_booking(session: Session, caller: Caller, booking_id: str) -> BookingOut:
    booking = session.get(Booking, booking_id)
    if booking is None:
        raise NotFound("No such booking.")
    ensure_visible(caller, (booking.customer_id, booking.provider_id), "booking")
    return booking_out(booking)


def list_bookings(
    session: Session, caller: Caller, status: str | None, limit: int, cursor: str | None
) -> tuple[list[BookingOut], str | None]:
    """The caller's bookings, as booker or provider (admins: all), newest first."""
    query = select(Booking).order_by(Booking.id.desc()).limit(limit + 1)
    if not caller.is_admin:
        query = query.where(or_(Booking.customer_id == caller.id, Booking.provider_id == caller.id))
    if status:
        query = query.where(Booking.status == status)
    if cursor:
        if not is_valid(cursor):
            raise ValidationFailed("cursor", "not a cursor this server made")
        query = query.where(Booking.id < cursor)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return [booking_out(b) for b in rows], (rows[-1].id if more else None)


def change_status(
    session: Session,
    caller: Caller,
    booking_id: str,
    action: BookingAction,
    *,
    reason: str | None = None,
    eta_minutes: int | None = None,
) -> BookingOut:
    """Move a booking along its lifecycle and post the system message, in one transaction."""
    booking = session.get(Booking, booking_id, with_for_update=True)
    if booking is None:
        raise NotFound("No such booking.")
    ensure_visible(caller, (booking.customer_id, booking.provider_id), "booking")
    if caller.id == booking.provider_id:
        actor = Actor.provider
    elif caller.id == booking.customer_id:
        actor = Actor.booker
    else:
        raise Forbidden("Only the parties of this booking can change it.")
    current = BookingStatus(booking.status)
    try:
        target = rules.decide(action, current, actor, booking.location_kind)
    except rules.WrongActor as exc:
        raise Forbidden(str(exc), code="wrong_actor") from None
    except rules.InvalidTransition as exc:
        raise Conflict(str(exc), code="invalid_transition") from None
    return _apply(session, booking, current, target, action, actor, reason, eta_minutes)


def _apply(
    session: Session,
    booking: Booking,
    current: BookingStatus,
    target: BookingStatus,
    action: BookingAction,
    actor: Actor,
    reason: str | None,
    eta_minutes: int | None,
) -> BookingOut:
    now = utcnow()
    values: dict[str, Any] = {"status": target.value, "updated_at": now}
    if eta_minutes is not None:
        values["eta_at"] = now + timedelta(minutes=eta_minutes)
    if reason is not None:
        values["status_reason"] = reason
    # Compare-and-set: if someone moved it since we read it, nothing changes.
    changed = session.execute(
        update(Booking)
        .where(Booking.id == booking.id, Booking.status == current.value)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if changed != 1:
        raise Conflict("The booking changed meanwhile; reload it.", code="invalid_transition")
    session.refresh(booking)
    tell = booking.customer_id if actor is not Actor.booker else booking.provider_id
    recipient = accounts.get_user(session, tell)
    conversation = chat_views.get_conversation_row(session, booking.conversation_id)
    chat.post_message(
        session,
        conversation,
        sender=None,
        recipient=recipient,
        content=rules.system_message(action, reason=reason, eta_minutes=eta_minutes),
        message_type=MessageType.system,
        booking_id=booking.id,
        original_language="en",
    )
    out = booking_out(booking)
    events.record(
        session, [booking.customer_id, booking.provider_id], "booking.updated", _json(out)
    )
    return out
