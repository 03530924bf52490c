"""Chats: the list, one conversation with its booking cards, sending, reading, and the card
actions (accept, decline, on the way, arrived, complete, cancel)."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from pesan.auth import Caller
from pesan.bookings import availability, reschedule
from pesan.bookings import service as bookings
from pesan.bookings import views as booking_views
from pesan.bookings.enums import BookingAction, BookingMode, ProposalStatus
from pesan.bookings.rules import Policy
from pesan.bookings.schemas import BookingOut, ProposalOut, SlotOut
from pesan.chat import service as chat
from pesan.chat import views as chat_views
from pesan.chat.schemas import ConversationOut, MessageOut, SendMessageIn
from pesan.deps import AppSettings, Db, Now, Throttler
from pesan.errors import Problem
from pesan.providers import service as providers
from pesan.providers.models import DEFAULT_TIMEZONE
from pesan.roles import PROVIDERS
from pesan.throttle import Limit
from pesan.web import cards, words
from pesan.web.i18n import zone_label
from pesan.web.pages import see_other
from pesan.web.render import live_state, render
from pesan.web.routing import WebRoute, error_page, wants_fragment
from pesan.web.session import SignedIn, language_of

router = APIRouter(route_class=WebRoute, include_in_schema=False)
HISTORY = 60


def other_party(conversation: ConversationOut, caller: Caller) -> Any:
    others = [p for p in conversation.participants if p.id != caller.id]
    return others[0] if others else conversation.participants[0]


def policy_of(settings: Any) -> Policy:
    return Policy.from_settings(settings)


def provider_zone(session: Any, conversation: ConversationOut) -> str:
    """Times in a chat are the provider's (the one who travels or opens the door)."""
    for person in conversation.participants:
        if person.role in PROVIDERS:
            try:
                return providers.get_profile(session, person.id).timezone
            except Problem:
                break
    return DEFAULT_TIMEZONE


@router.get("/chat")
def conversations(request: Request, db: Db, caller: SignedIn) -> Response:
    with db.reader() as session:
        live = live_state(session, caller)
        items, _ = chat_views.list_conversations(session, caller, 100, None)
    return render(
        request,
        "conversations.html",
        caller=caller,
        live=live,
        conversations=items,
        other_party=lambda c: other_party(c, caller),
    )


def _history(session: Any, caller: Caller, conversation: ConversationOut) -> list[MessageOut]:
    last = conversation.last_message
    if last is None:
        return []
    older, _ = chat_views.list_messages(
        session, caller, conversation.id, after=None, before=last.id, limit=HISTORY - 1
    )
    return [*older, last]


@router.get("/chat/{conversation_id}")
def conversation_page(
    request: Request,
    conversation_id: str,
    db: Db,
    caller: SignedIn,
    now: Now,
    settings: AppSettings,
) -> Response:
    with db.reader() as session:
        live = live_state(session, caller)
        conversation = chat_views.get_conversation(session, caller, conversation_id)
        messages = _history(session, caller, conversation)
        booked = booking_views.bookings_in_conversation(session, caller, conversation_id)
        zone = provider_zone(session, conversation)
        active = [b for b in booked if b.status in ("pending", "accepted", "on_the_way", "arrived")]
        pinned = active or booked[:1]
        moves = moves_for(session, caller, pinned, now)
    return render(
        request,
        "chat.html",
        caller=caller,
        live=live,
        conversation=conversation,
        other=other_party(conversation, caller),
        messages=messages,
        bookings=pinned,
        zone=zone,
        zone_name=zone_label(zone),
        read_only=caller.id not in {p.id for p in conversation.participants},
        **card_helpers(caller, now, policy_of(settings), moves),
    )


def helpers_for(request: Request, caller: Caller) -> dict[str, Any]:
    """Card helpers with the app's clock and policy (for pages that show cards in passing)."""
    state = request.app.state
    return card_helpers(caller, state.clock.now(), policy_of(state.settings))


MOVE_DAYS = 7


@dataclass
class Moves:
    """For each booking card: its open proposal to move it, and the free times to propose."""

    proposals: dict[str, ProposalOut] = field(default_factory=dict)
    slots: dict[str, list[SlotOut]] = field(default_factory=dict)


def moves_for(session: Any, caller: Caller, shown: list[BookingOut], now: datetime) -> Moves:
    moves = Moves()
    for booking in shown:
        if booking.mode != BookingMode.scheduled or booking.status not in reschedule.MOVABLE:
            continue
        if cards.actor_of(booking, caller) is None:
            continue  # an admin watching moves nothing
        for proposal in reschedule.list_proposals(session, caller, booking.id):
            if proposal.status == ProposalStatus.pending:
                moves.proposals[booking.id] = proposal
        free = availability.availability(
            session,
            booking.provider_id,
            booking.service_id,
            now,
            now + timedelta(days=MOVE_DAYS),
            now,
        )
        moves.slots[booking.id] = [s for s in free.items if s.start_at != booking.start_at]
    return moves


def card_helpers(
    caller: Caller, now: datetime, policy: Policy, moves: Moves | None = None
) -> dict[str, Any]:
    moves = moves or Moves()
    return {
        "open_proposal": lambda b: moves.proposals.get(b.id),
        "move_slots": lambda b: moves.slots.get(b.id, []),
        "viewer_actor": lambda b: cards.actor_of(b, caller),
        "actions_for": lambda b: cards.actions_for(b, caller, now, policy),
        "respond_by": cards.respond_by,
        "status_label": cards.status_label,
        "action_label": cards.action_label,
        "where": cards.where,
    }


@router.get("/chat/{conversation_id}/messages/{message_id}")
def message(
    request: Request, conversation_id: str, message_id: str, db: Db, caller: SignedIn
) -> Response:
    """One message as the chat shows it (the live script asks for the server's own lines)."""
    with db.reader() as session:
        conversation = chat_views.get_conversation(session, caller, conversation_id)
        found = chat_views.message_out(
            chat_views.message_in(session, conversation_id, message_id, "messageId")
        )
        zone = provider_zone(session, conversation)
    return render(request, "_message.html", caller=caller, m=found, zone=zone)


@router.post("/chat/{conversation_id}/messages")
def send(
    request: Request,
    conversation_id: str,
    db: Db,
    caller: SignedIn,
    throttle: Throttler,
    content: Annotated[str, Form(max_length=8000)] = "",
    client_message_id: Annotated[str | None, Form(max_length=100)] = None,
) -> Response:
    try:
        body = SendMessageIn.model_validate(
            {
                "content": content,
                "clientMessageId": client_message_id or None,
                "originalLanguage": language_of(request),
            }
        )
    except ValidationError:
        if wants_fragment(request):
            return JSONResponse({"code": "validation_failed"}, status_code=422)
        return error_page(request, 422, "validation_failed")
    throttle.hit(Limit.send, caller.id)  # over it: a 429 page (or fragment) with Retry-After
    with db.transaction() as session:
        posted = chat.send_message(session, caller, conversation_id, body)
    if wants_fragment(request):
        return JSONResponse(posted.message.model_dump(mode="json", by_alias=True))
    return see_other(f"/chat/{conversation_id}")


@router.post("/chat/{conversation_id}/read")
def read(
    conversation_id: str,
    db: Db,
    caller: SignedIn,
    up_to: Annotated[str, Form(max_length=64)],
) -> Response:
    with db.transaction() as session:
        out = chat.mark_read(session, caller, conversation_id, up_to)
    return JSONResponse({"unreadCount": out.unread_count})


def _card(
    request: Request,
    caller: Caller,
    booking: BookingOut,
    now: datetime,
    policy: Policy,
    problem: str | None = None,
) -> Response:
    db = request.app.state.db
    with db.reader() as session:
        moves = moves_for(session, caller, [booking], now)
    return render(
        request,
        "_booking_card.html",
        caller=caller,
        booking=booking,
        zone=booking.timezone,
        card_problem=problem,
        **card_helpers(caller, now, policy, moves),
    )


@router.get("/bookings/{booking_id}/card")
def card(
    request: Request,
    booking_id: str,
    db: Db,
    caller: SignedIn,
    now: Now,
    settings: AppSettings,
) -> Response:
    with db.reader() as session:
        booking = booking_views.get_booking(session, caller, booking_id)
    return _card(request, caller, booking, now, policy_of(settings))


def _after_change(
    request: Request, caller: Caller, booking_id: str, now: datetime, settings: Any
) -> Response:
    """The card again for the page's script; the chat for a plain form."""
    with request.app.state.db.reader() as session:
        booking = booking_views.get_booking(session, caller, booking_id)
    if wants_fragment(request):
        return _card(request, caller, booking, now, policy_of(settings))
    return see_other(f"/chat/{booking.conversation_id}#booking-{booking.id}")


def _refused(
    request: Request,
    caller: Caller,
    booking_id: str,
    now: datetime,
    settings: Any,
    problem: Problem,
) -> Response:
    if not wants_fragment(request):
        raise problem
    with request.app.state.db.reader() as session:
        booking = booking_views.get_booking(session, caller, booking_id)
    response = _card(
        request, caller, booking, now, policy_of(settings), words.problem_text(problem.code)
    )
    response.status_code = problem.status
    response.headers["X-Pesan-Problem"] = problem.code
    return response


@router.post("/bookings/{booking_id}/proposals")
def propose(
    request: Request,
    booking_id: str,
    db: Db,
    caller: SignedIn,
    now: Now,
    settings: AppSettings,
    start_at: Annotated[datetime, Form()],
) -> Response:
    """Propose another time for a scheduled booking (the other side answers in the chat)."""
    try:
        with db.transaction() as session:
            reschedule.propose(session, caller, booking_id, start_at, now)
    except Problem as problem:
        return _refused(request, caller, booking_id, now, settings, problem)
    return _after_change(request, caller, booking_id, now, settings)


@router.post("/bookings/{booking_id}/proposals/{proposal_id}/{answer}")
def answer_proposal(
    request: Request,
    booking_id: str,
    proposal_id: str,
    answer: str,
    db: Db,
    caller: SignedIn,
    now: Now,
    settings: AppSettings,
) -> Response:
    if answer not in ("accept", "decline"):
        return error_page(request, 404, "not_found")
    try:
        with db.transaction() as session:
            reschedule.answer(
                session,
                caller,
                booking_id,
                proposal_id,
                accept=answer == "accept",
                now=now,
                policy=policy_of(settings),
            )
    except Problem as problem:
        return _refused(request, caller, booking_id, now, settings, problem)
    return _after_change(request, caller, booking_id, now, settings)


ACTIONS = {a.value: a for a in words.ACTION}


@router.post("/bookings/{booking_id}/{action}")
def act(
    request: Request,
    booking_id: str,
    action: str,
    db: Db,
    caller: SignedIn,
    now: Now,
    settings: AppSettings,
    reason: Annotated[str | None, Form(max_length=500)] = None,
    eta_minutes: Annotated[int | None, Form(ge=1, le=240)] = None,
) -> Response:
    chosen = ACTIONS.get(action)
    if chosen is None:
        return error_page(request, 404, "not_found")
    kwargs: dict[str, Any] = {}
    if chosen in (BookingAction.decline, BookingAction.cancel):
        kwargs["reason"] = (reason or "").strip() or None
    if chosen is BookingAction.on_the_way:
        kwargs["eta_minutes"] = eta_minutes or 20
    policy = policy_of(settings)
    try:
        with db.transaction() as session:
            booking = bookings.change_status(
                session, caller, booking_id, chosen, now, policy, **kwargs
            )
    except Problem as problem:
        if not wants_fragment(request):
            raise
        with db.reader() as session:
            booking = booking_views.get_booking(session, caller, booking_id)
        response = _card(request, caller, booking, now, policy, words.problem_text(problem.code))
        response.status_code = problem.status
        response.headers["X-Pesan-Problem"] = problem.code
        return response
    if wants_fragment(request):
        return _card(request, caller, booking, now, policy)
    return see_other(f"/chat/{booking.conversation_id}#booking-{booking.id}")
