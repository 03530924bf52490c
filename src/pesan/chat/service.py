"""Conversations and messages: who may talk to whom, sending, and read receipts.

Each function is one use case (or a step of one) inside the caller's transaction. What the
chat shows is in views.py.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pesan.accounts import service as accounts
from pesan.accounts.models import User
from pesan.auth import Caller, ensure_party
from pesan.chat import views
from pesan.chat.enums import SYSTEM_SENDER, MessageType
from pesan.chat.models import Conversation, Message, Participant
from pesan.chat.schemas import ConversationOut, MessageOut, ReadOut, SendMessageIn
from pesan.db import insert_or_existing
from pesan.errors import Conflict, Forbidden, NotFound, ValidationFailed
from pesan.ids import is_valid, new_id
from pesan.live import events
from pesan.roles import BOOKERS, PROVIDERS, Role
from pesan.timeutil import utcnow


def may_converse(a: Role, b: Role) -> bool:
    """A booker and a provider, or anyone and an admin."""
    if Role.admin in (a, b):
        return True
    return (a in BOOKERS and b in PROVIDERS) or (b in BOOKERS and a in PROVIDERS)


def _pair_key(a: str, b: str) -> str:
    return ":".join(sorted((a, b)))


def conversation_between(session: Session, a: User, b: User) -> Conversation:
    """The one conversation of this pair, made if new (safe against a concurrent maker)."""
    key = _pair_key(a.id, b.id)

    def existing() -> Conversation | None:
        return session.scalar(select(Conversation).where(Conversation.pair_key == key))

    found = existing()
    if found is not None:
        return found
    now = utcnow()
    conversation = Conversation(id=new_id(), pair_key=key, created_at=now, updated_at=now)
    made = insert_or_existing(session, conversation, existing)
    if made is conversation:
        session.add_all(
            [
                Participant(conversation_id=conversation.id, user_id=a.id),
                Participant(conversation_id=conversation.id, user_id=b.id),
            ]
        )
        session.flush()
    return made


def open_conversation(session: Session, caller: Caller, participant_id: str) -> ConversationOut:
    other = session.get(User, participant_id) if is_valid(participant_id) else None
    if other is None or other.disabled_at is not None:
        raise NotFound("No such user.")
    if other.id == caller.id or not may_converse(caller.role, Role(other.role)):
        raise Forbidden(
            "A conversation joins a booker and a provider, or anyone and an admin.",
            code="conversation_not_allowed",
        )
    me = accounts.get_user(session, caller.id)
    conversation = conversation_between(session, me, other)
    return views.conversation_for(session, caller.id, conversation)


def post_message(
    session: Session,
    conversation: Conversation,
    *,
    sender: User | None,
    recipient: User,
    content: str,
    message_type: MessageType,
    booking_id: str | None = None,
    original_language: str = "id",
    client_message_id: str | None = None,
    room_id: str | None = None,
    session_id: str | None = None,
    expires_at: datetime | None = None,
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Message:
    """Store one message and its events. `sender=None` is the system (booking updates)."""
    now = now or utcnow()
    message = Message(
        id=new_id(),
        conversation_id=conversation.id,
        sender_id=sender.id if sender else None,
        sender_name=sender.name if sender else "pesan",
        sender_type=sender.role if sender else SYSTEM_SENDER,
        recipient_id=recipient.id,
        recipient_name=recipient.name,
        recipient_type=recipient.role,
        content=content,
        data=data,
        message_type=message_type,
        original_language=original_language,
        is_system_message=sender is None,
        room_id=room_id,
        booking_id=booking_id,
        read=False,
        expires_at=expires_at,
        session_id=session_id,
        client_message_id=client_message_id,
        created_at=now,
    )
    session.add(message)
    conversation.last_message_id = message.id
    conversation.updated_at = now
    session.flush()
    parties = views.party_ids(session, conversation.id)
    events.record(
        session,
        parties,
        "message.created",
        views.message_out(message).model_dump(mode="json", by_alias=True),
    )
    _record_conversation_updated(session, conversation, parties)
    return message


def _record_conversation_updated(
    session: Session, conversation: Conversation, user_ids: list[str]
) -> None:
    for user_id in user_ids:
        data = views.conversation_for(session, user_id, conversation)
        events.record(
            session, [user_id], "conversation.updated", data.model_dump(mode="json", by_alias=True)
        )


@dataclass
class Posted:
    message: MessageOut
    created: bool


def send_message(
    session: Session, caller: Caller, conversation_id: str, body: SendMessageIn
) -> Posted:
    conversation = views.visible_conversation(session, caller, conversation_id)
    parties = views.party_ids(session, conversation_id)
    ensure_party(caller, parties, "conversation")
    if body.client_message_id:
        earlier = _sent_before(session, caller.id, body.client_message_id)
        if earlier is not None:
            return Posted(views.message_out(_same_conversation(earlier, conversation_id)), False)
    if body.message_type == MessageType.notification and caller.role is not Role.admin:
        raise ValidationFailed("messageType", "only admins send notifications")
    other_id = next(p for p in parties if p != caller.id)
    if body.recipient_id is not None and body.recipient_id != other_id:
        raise ValidationFailed("recipientId", "is not the other party of this conversation")
    if body.booking_id is not None and not _has_booking(session, conversation_id, body.booking_id):
        raise ValidationFailed("bookingId", "no such booking in this conversation")
    sender = accounts.get_user(session, caller.id)
    recipient = accounts.get_user(session, other_id)
    try:
        with session.begin_nested():
            message = post_message(
                session,
                conversation,
                sender=sender,
                recipient=recipient,
                content=body.content,
                message_type=body.message_type,
                booking_id=body.booking_id,
                original_language=body.original_language,
                client_message_id=body.client_message_id,
                room_id=body.room_id,
                session_id=body.session_id,
                expires_at=body.expires_at,
            )
    except IntegrityError:
        # The same clientMessageId raced in from another request: answer with that one.
        session.info.pop("pending_events", None)
        earlier = _sent_before(session, caller.id, body.client_message_id)
        if earlier is None:
            raise
        return Posted(views.message_out(_same_conversation(earlier, conversation_id)), False)
    return Posted(views.message_out(message), created=True)


def _sent_before(session: Session, sender_id: str, client_message_id: str | None) -> Message | None:
    if client_message_id is None:
        return None
    return session.scalar(
        select(Message).where(
            Message.sender_id == sender_id, Message.client_message_id == client_message_id
        )
    )


def _has_booking(session: Session, conversation_id: str, booking_id: str) -> bool:
    """A booking lives in the conversation its request card was posted to."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    Message.conversation_id == conversation_id,
                    Message.booking_id == booking_id,
                    Message.message_type == MessageType.booking,
                )
            )
        )
    )


def _same_conversation(earlier: Message, conversation_id: str) -> Message:
    """A repeated clientMessageId is a retry only within the conversation it was sent to."""
    if earlier.conversation_id != conversation_id:
        raise Conflict(
            "This clientMessageId was already used for a message in another conversation.",
            code="client_message_id_reused",
        )
    return earlier


def mark_read(session: Session, caller: Caller, conversation_id: str, up_to: str) -> ReadOut:
    conversation = views.visible_conversation(session, caller, conversation_id)
    parties = views.party_ids(session, conversation_id)
    ensure_party(caller, parties, "conversation")
    anchor = views.message_in(session, conversation_id, up_to, "upToMessageId")
    now = utcnow()
    result = session.execute(
        update(Message)
        .where(
            Message.conversation_id == conversation_id,
            Message.recipient_id == caller.id,
            Message.read.is_(False),
            Message.id <= anchor.id,
        )
        .values(read=True, read_at=now)
        .execution_options(synchronize_session=False)
    )
    marked = int(result.rowcount or 0)  # type: ignore[attr-defined]
    unread = views.unread_counts(session, caller.id, [conversation_id])[conversation_id]
    out = ReadOut(
        conversation_id=conversation_id,
        reader_id=caller.id,
        up_to_message_id=anchor.id,
        read_at=now,
        marked=marked,
        unread_count=unread,
    )
    if marked:
        data = out.model_dump(
            mode="json",
            by_alias=True,
            include={"conversation_id", "reader_id", "up_to_message_id", "read_at"},
        )
        events.record(session, parties, "message.read", data)
        _record_conversation_updated(session, conversation, [caller.id])
    return out
