"""Moving a booking, agreed in its chat: one party proposes a new start (a structured
`reschedule` message), the other accepts it (the booking moves, if that time is free) or
declines it. A new proposal replaces an open one; a booking that ends withdraws it."""

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pesan.auth import Caller, ensure_party
from pesan.bookings import availability, rules
from pesan.bookings.enums import Actor, BookingMode, BookingStatus, ProposalStatus
from pesan.bookings.models import NO_OVERLAP, Booking, RescheduleProposal
from pesan.bookings.schemas import ProposalOut
from pesan.bookings.service import (
    close_open_proposals,
    event_data,
    party_of,
    post_system_message,
    slot_unavailable,
)
from pesan.bookings.views import booking_out, facts_of, visible_booking
from pesan.chat import service as chat
from pesan.chat import views as chat_views
from pesan.chat.enums import MessageType
from pesan.errors import Conflict, Forbidden, NotFound, constraint_name
from pesan.ids import is_valid, new_id
from pesan.live import events
from pesan.providers import service as providers
from pesan.providers.schedule import Refusal
from pesan.timeutil import day_and_clock_in, rfc3339

MOVABLE = (BookingStatus.pending, BookingStatus.accepted)


def proposal_out(proposal: RescheduleProposal) -> ProposalOut:
    return ProposalOut(
        id=proposal.id,
        booking_id=proposal.booking_id,
        proposed_by=Actor(proposal.proposed_by),
        start_at=proposal.start_at,
        end_at=proposal.end_at,
        status=ProposalStatus(proposal.status),
        created_at=proposal.created_at,
        decided_at=proposal.decided_at,
    )


def _movable(session: Session, caller: Caller, booking_id: str) -> tuple[Booking, Actor]:
    booking = visible_booking(session, caller, booking_id)
    ensure_party(caller, (booking.customer_id, booking.provider_id), "booking")
    actor = party_of(caller, booking)
    booking = session.get(Booking, booking_id, with_for_update=True) or booking
    if booking.mode == BookingMode.now:
        raise Conflict(
            "A 'now' booking cannot be moved; cancel it and book a time.",
            code="invalid_transition",
        )
    if booking.status not in MOVABLE:
        raise Conflict(
            f"A booking that is {booking.status} cannot be moved.", code="invalid_transition"
        )
    return booking, actor


def _check_free(session: Session, booking: Booking, start_at: datetime, now: datetime) -> timedelta:
    profile = providers.get_profile(session, booking.provider_id)
    duration = booking.end_at - booking.start_at
    refused = availability.refusal(
        session, profile, duration, start_at, now, except_booking=booking.id
    )
    if refused is not None:
        raise slot_unavailable(
            session, profile, duration, start_at, now, refused, except_booking=booking.id
        )
    return duration


def propose(
    session: Session, caller: Caller, booking_id: str, start_at: datetime, now: datetime
) -> ProposalOut:
    booking, actor = _movable(session, caller, booking_id)
    if start_at == booking.start_at:
        raise Conflict("That is the booking's time already.", code="invalid_transition")
    duration = _check_free(session, booking, start_at, now)
    close_open_proposals(session, booking.id, now)
    proposal = RescheduleProposal(
        id=new_id(),
        booking_id=booking.id,
        proposed_by=actor.value,
        start_at=start_at,
        end_at=start_at + duration,
        status=ProposalStatus.pending,
        created_at=now,
    )
    session.add(proposal)
    session.flush()
    other = booking.customer_id if actor is Actor.provider else booking.provider_id
    conversation = chat_views.conversation_parties(session.connection(), booking.conversation_id)
    assert conversation is not None, "a booking has its conversation"
    message = chat.post_message(
        session,
        conversation,
        sender=conversation.party(caller.id),
        recipient=conversation.party(other),
        content=(
            f"Proposed new time: {day_and_clock_in(start_at, booking.timezone)} "
            f"(instead of {day_and_clock_in(booking.start_at, booking.timezone)})."
        ),
        message_type=MessageType.reschedule,
        booking_id=booking.id,
        original_language="en",
        data={
            "proposalId": proposal.id,
            "bookingId": booking.id,
            "startAt": rfc3339(proposal.start_at),
            "endAt": rfc3339(proposal.end_at),
        },
        now=now,
    )
    proposal.message_id = message.id
    return proposal_out(proposal)


def answer(
    session: Session,
    caller: Caller,
    booking_id: str,
    proposal_id: str,
    *,
    accept: bool,
    now: datetime,
    policy: rules.Policy,
) -> ProposalOut:
    booking, actor = _movable(session, caller, booking_id)
    proposal = _open_proposal(session, booking.id, proposal_id)
    if proposal.proposed_by == actor.value:
        raise Forbidden("The other party answers a proposal.", code="wrong_actor")
    if not accept:
        _decide(session, proposal, ProposalStatus.declined, now)
        post_system_message(
            session,
            booking,
            "The proposed new time was declined; the booking stays at "
            f"{day_and_clock_in(booking.start_at, booking.timezone)}.",
            to_actor=actor,
            now=now,
        )
        return proposal_out(proposal)
    _check_free(session, booking, proposal.start_at, now)
    _decide(session, proposal, ProposalStatus.accepted, now)
    _move(session, booking, proposal, now, policy)
    post_system_message(
        session,
        booking,
        f"New time agreed: {day_and_clock_in(booking.start_at, booking.timezone)}. "
        + rules.policy_summary(facts_of(booking), policy, booking.timezone),
        to_actor=actor,
        now=now,
    )
    events.record(
        session,
        [booking.customer_id, booking.provider_id],
        "booking.updated",
        event_data(booking_out(booking)),
    )
    return proposal_out(proposal)


def _move(
    session: Session,
    booking: Booking,
    proposal: RescheduleProposal,
    now: datetime,
    policy: rules.Policy,
) -> None:
    profile = providers.get_profile(session, booking.provider_id)
    blocked_from, blocked_until = availability.hold_of(profile, proposal.start_at, proposal.end_at)
    values = {
        "start_at": proposal.start_at,
        "end_at": proposal.end_at,
        "blocked_from": blocked_from,
        "blocked_until": blocked_until,
        "updated_at": now,
        # A new time gets its own reminder, unless it is already close.
        "reminded_at": now if proposal.start_at - now <= policy.reminder_lead else None,
    }
    if booking.status == BookingStatus.pending and booking.respond_by is not None:
        values["respond_by"] = min(booking.respond_by, proposal.start_at)
    try:
        with session.begin_nested():
            session.execute(
                update(Booking)
                .where(Booking.id == booking.id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
    except IntegrityError as exc:
        if constraint_name(exc) != NO_OVERLAP:
            raise
        raise slot_unavailable(
            session,
            profile,
            proposal.end_at - proposal.start_at,
            proposal.start_at,
            now,
            Refusal.taken,
            except_booking=booking.id,
        ) from None
    session.refresh(booking)


def _open_proposal(session: Session, booking_id: str, proposal_id: str) -> RescheduleProposal:
    proposal = session.get(RescheduleProposal, proposal_id) if is_valid(proposal_id) else None
    if proposal is None or proposal.booking_id != booking_id:
        raise NotFound("No such proposal.")
    if proposal.status != ProposalStatus.pending:
        raise Conflict(f"That proposal was {proposal.status}.", code="invalid_transition")
    return proposal


def _decide(
    session: Session, proposal: RescheduleProposal, status: ProposalStatus, now: datetime
) -> None:
    changed = session.execute(
        update(RescheduleProposal)
        .where(
            RescheduleProposal.id == proposal.id,
            RescheduleProposal.status == ProposalStatus.pending,
        )
        .values(status=status, decided_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if changed != 1:
        raise Conflict("That proposal was answered meanwhile.", code="invalid_transition")
    session.refresh(proposal)


def list_proposals(session: Session, caller: Caller, booking_id: str) -> list[ProposalOut]:
    booking = visible_booking(session, caller, booking_id)
    rows = session.scalars(
        select(RescheduleProposal)
        .where(RescheduleProposal.booking_id == booking.id)
        .order_by(RescheduleProposal.id)
    )
    return [proposal_out(p) for p in rows]
