"""Conversations and messages: who may talk to whom, sending, history, read receipts."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pesan.accounts.models import User
from pesan.auth import Caller, ensure_party, ensure_visible
from pesan.chat.enums import SYSTEM_SENDER
from pesan.chat.models import Conversation, Message, Participant
from pesan.chat.schemas import (
    ConversationOut,
    MessageOut,
    ParticipantOut,
    ReadOut,
    SendMessageIn,
)
from pesan.errors import Conflict, Forbidden, NotFound, ValidationFailed
from pesan.ids import is_valid, new_id
from pesan.live import events
from pesan.roles import BOOKERS, PROVIDERS, Role
from pesan.schemas import decode_cursor, encode_cursor
from pesan.timeutil import rfc3339, utcnow


def may_converse(a: Role, b: Role) -> bool:
    """A booker and a provider, or anyone and an admin."""
    if Role.admin in (a, b):
        return True
    return (a in BOOKERS and b in PROVIDERS) or (b in BOOKERS and a in PROVIDERS)


def message_out(message: Message) -> MessageOut:
    return MessageOut(
        id=message.id,
        conversation_id=message.conversation_id,
        sender_id=message.sender_id or SYSTEM_SENDER,
        sender_name=message.sender_name,
        sender_type=message.sender_type,
        recipient_id=message.recipient_id,
        recipient_name=message.recipient_name,
        recipient_type=message.recipient_type,
        content=message.content,
        message_type=message.message_type,
        original_language=message.original_language,
        is_system_message=message.is_system_message,
        room_id=message.room_id,
        booking_id=message.booking_id,
        read=message.read,
        read_at=message.read_at,
        expires_at=message.expires_at,
        session_id=message.session_id,
        client_message_id=message.client_message_id,
        created_at=message.created_at,
    )


def _pair_key(a: str, b: str) -> str:
    return ":".join(sorted((a, b)))


def party_ids(session: Session, conversation_id: str) -> list[str]:
    if not is_valid(conversation_id):  # e.g. a typing frame naming no real conversation
        return []
    return list(
        session.scalars(
            select(Participant.user_id).where(Participant.conversation_id == conversation_id)
        )
    )


def _visible_conversation(session: Session, caller: Caller, conversation_id: str) -> Conversation:
    conversation = session.get(Conversation, conversation_id) if is_valid(conversation_id) else None
    if conversation is None:
        raise NotFound("No such conversation.")
    ensure_visible(caller, party_ids(session, conversation_id), "conversation")
    return conversation


def conversation_between(session: Session, a: User, b: User) -> Conversation:
    """The one conversation of this pair, made if new (safe against a concurrent maker)."""
    key = _pair_key(a.id, b.id)
    existing = session.scalar(select(Conversation).where(Conversation.pair_key == key))
    if existing is not None:
        return existing
    now = utcnow()
    conversation = Conversation(id=new_id(), pair_key=key, created_at=now, updated_at=now)
    try:
        with session.begin_nested():
            session.add(conversation)
            session.flush()
            session.add_all(
                [
                    Participant(conversation_id=conversation.id, user_id=a.id),
                    Participant(conversation_id=conversation.id, user_id=b.id),
                ]
            )
            session.flush()
    except IntegrityError:
        existing = session.scalar(select(Conversation).where(Conversation.pair_key == key))
        if existing is None:
            raise
        return existing
    return conversation


def unread_counts(session: Session, user_id: str, conversation_ids: list[str]) -> dict[str, int]:
    if not conversation_ids:
        return {}
    rows = session.execute(
        select(Message.conversation_id, func.count())
        .where(
            Message.recipient_id == user_id,
            Message.read.is_(False),
            Message.conversation_id.in_(conversation_ids),
        )
        .group_by(Message.conversation_id)
    )
    counts = {cid: 0 for cid in conversation_ids}
    counts.update({cid: int(n) for cid, n in rows})
    return counts


def _conversations_out(
    session: Session, viewer_id: str, conversations: list[Conversation]
) -> list[ConversationOut]:
    ids = [c.id for c in conversations]
    if not ids:
        return []
    people: dict[str, list[ParticipantOut]] = {cid: [] for cid in ids}
    rows = session.execute(
        select(Participant.conversation_id, User.id, User.name, User.role)
        .join(User, User.id == Participant.user_id)
        .where(Participant.conversation_id.in_(ids))
        .order_by(Participant.conversation_id, User.id)
    )
    for cid, uid, name, role in rows:
        people[cid].append(ParticipantOut(id=uid, name=name, role=role))
    last_ids = [c.last_message_id for c in conversations if c.last_message_id]
    last = {m.id: m for m in session.scalars(select(Message).where(Message.id.in_(last_ids)))}
    counts = unread_counts(session, viewer_id, ids)
    out = []
    for c in conversations:
        message = last.get(c.last_message_id) if c.last_message_id else None
        out.append(
            ConversationOut(
                id=c.id,
                participants=people[c.id],
                last_message=message_out(message) if message else None,
                unread_count=counts[c.id],
                created_at=c.created_at,
                updated_at=c.updated_at,
            )
        )
    return out


def conversation_for(
    session: Session, viewer_id: str, conversation: Conversation
) -> ConversationOut:
    return _conversations_out(session, viewer_id, [conversation])[0]


def open_conversation(session: Session, caller: Caller, participant_id: str) -> ConversationOut:
    other = session.get(User, participant_id) if is_valid(participant_id) else None
    if other is None or other.disabled_at is not None:
        raise NotFound("No such user.")
    if other.id == caller.id or not may_converse(caller.role, Role(other.role)):
        raise Forbidden(
            "A conversation joins a booker and a provider, or anyone and an admin.",
            code="conversation_not_allowed",
        )
    me = session.get(User, caller.id)
    assert me is not None
    conversation = conversation_between(session, me, other)
    return conversation_for(session, caller.id, conversation)


def get_conversation(session: Session, caller: Caller, conversation_id: str) -> ConversationOut:
    conversation = _visible_conversation(session, caller, conversation_id)
    return conversation_for(session, caller.id, conversation)


def list_conversations(
    session: Session, caller: Caller, limit: int, cursor: str | None
) -> tuple[list[ConversationOut], str | None]:
    query = (
        select(Conversation)
        .join(Participant, Participant.conversation_id == Conversation.id)
        .where(Participant.user_id == caller.id)
        .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
        .limit(limit + 1)
    )
    if cursor:
        parts = decode_cursor(cursor, 2)
        if parts is None or not is_valid(parts[1]):
            raise ValidationFailed("cursor", "not a cursor this server made")
        try:
            at = datetime.fromisoformat(parts[0].replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValidationFailed("cursor", "not a cursor this server made") from exc
        query = query.where(
            (Conversation.updated_at < at)
            | ((Conversation.updated_at == at) & (Conversation.id < parts[1]))
        )
    conversations = list(session.scalars(query))
    more = len(conversations) > limit
    conversations = conversations[:limit]
    next_cursor = None
    if more:
        tail = conversations[-1]
        next_cursor = encode_cursor(rfc3339(tail.updated_at), tail.id)
    return _conversations_out(session, caller.id, conversations), next_cursor


def _message_in(session: Session, conversation_id: str, message_id: str, field: str) -> Message:
    message = session.get(Message, message_id) if is_valid(message_id) else None
    if message is None or message.conversation_id != conversation_id:
        raise ValidationFailed(field, "no such message in this conversation")
    return message


def list_messages(
    session: Session,
    caller: Caller,
    conversation_id: str,
    *,
    after: str | None,
    before: str | None,
    limit: int,
) -> tuple[list[MessageOut], str | None]:
    _visible_conversation(session, caller, conversation_id)
    if after and before:
        raise ValidationFailed("before", "use either after or before, not both")
    query = select(Message).where(Message.conversation_id == conversation_id)
    if before:
        anchor = _message_in(session, conversation_id, before, "before")
        rows = list(
            session.scalars(
                query.where(Message.id < anchor.id).order_by(Message.id.desc()).limit(limit + 1)
            )
        )
        more = len(rows) > limit
        rows = list(reversed(rows[:limit]))
        return [message_out(m) for m in rows], (rows[0].id if more and rows else None)
    if after:
        anchor = _message_in(session, conversation_id, after, "after")
        query = query.where(Message.id > anchor.id)
    rows = list(session.scalars(query.order_by(Message.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return [message_out(m) for m in rows], (rows[-1].id if more and rows else None)


@dataclass
class Posted:
    message: MessageOut
    created: bool


def post_message(
    session: Session,
    conversation: Conversation,
    *,
    sender: User | None,
    recipient: User,
    content: str,
    message_type: str,
    booking_id: str | None = None,
    original_language: str = "id",
    client_message_id: str | None = None,
    room_id: str | None = None,
    session_id: str | None = None,
    expires_at: datetime | None = None,
) -> Message:
    """Store one message and its events. `sender=None` is the system (booking updates)."""
    now = utcnow()
    message = Message(
        id=new_id(),
        conversation_id=conversation.id,
        sender_id=sender.id if sender else None,
        sender_name=sender.name if sender else "pesan",
        sender_type=sender.role if sender else "system",
        recipient_id=recipient.id,
        recipient_name=recipient.name,
        recipient_type=recipient.role,
        content=content,
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
    parties = party_ids(session, conversation.id)
    events.record(
        session,
        parties,
        "message.created",
        message_out(message).model_dump(mode="json", by_alias=True),
    )
    _record_conversation_updated(session, conversation, parties)
    return message


def _record_conversation_updated(
    session: Session, conversation: Conversation, user_ids: list[str]
) -> None:
    for user_id in user_ids:
        data = conversation_for(session, user_id, conversation)
        events.record(
            session, [user_id], "conversation.updated", data.model_dump(mode="json", by_alias=True)
        )


def send_message(
    session: Session, caller: Caller, conversation_id: str, body: SendMessageIn
) -> Posted:
    conversation = _visible_conversation(session, caller, conversation_id)
    parties = party_ids(session, conversation_id)
    ensure_party(caller, parties, "conversation")
    if body.client_message_id:
        earlier = session.scalar(
            select(Message).where(
                Message.sender_id == caller.id,
                Message.client_message_id == body.client_message_id,
            )
        )
        if earlier is not None:
            return Posted(message_out(_same_conversation(earlier, conversation_id)), False)
    if body.message_type == "notification" and caller.role is not Role.admin:
        raise ValidationFailed("messageType", "only admins send notifications")
    other_id = next(p for p in parties if p != caller.id)
    if body.recipient_id is not None and body.recipient_id != other_id:
        raise ValidationFailed("recipientId", "is not the other party of this conversation")
    if body.booking_id is not None:
        from pesan.bookings.models import Booking  # bookings depend on chat, not the reverse

        booking = session.get(Booking, body.booking_id)
        if booking is None or booking.conversation_id != conversation_id:
            raise ValidationFailed("bookingId", "no such booking in this conversation")
    sender = session.get(User, caller.id)
    recipient = session.get(User, other_id)
    assert sender is not None and recipient is not None
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
        earlier = session.scalar(
            select(Message).where(
                Message.sender_id == caller.id,
                Message.client_message_id == body.client_message_id,
            )
        )
        if earlier is None:
            raise
        return Posted(message_out(_same_conversation(earlier, conversation_id)), False)
    return Posted(message_out(message), created=True)


def _same_conversation(earlier: Message, conversation_id: str) -> Message:
    """A repeated clientMessageId is a retry only within the conversation it was sent to."""
    if earlier.conversation_id != conversation_id:
        raise Conflict(
            "This clientMessageId was already used for a message in another conversation.",
            code="client_message_id_reused",
        )
    return earlier


def mark_read(session: Session, caller: Caller, conversation_id: str, up_to: str) -> ReadOut:
    conversation = _visible_conversation(session, caller, conversation_id)
    parties = party_ids(session, conversation_id)
    ensure_party(caller, parties, "conversation")
    anchor = _message_in(session, conversation_id, up_to, "upToMessageId")
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
    unread = unread_counts(session, caller.id, [conversation_id])[conversation_id]
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


def get_conversation_row(session: Session, conversation_id: str) -> Conversation:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound("No such conversation.")
    return conversation


def unread_by_conversation(session: Session, user_id: str) -> dict[str, int]:
    """The user's conversations that have unread messages, with how many (the web's badges)."""
    rows = session.execute(
        select(Message.conversation_id, func.count())
        .where(Message.recipient_id == user_id, Message.read.is_(False))
        .group_by(Message.conversation_id)
    )
    return {cid: int(n) for cid, n in rows}


def all_conversations(session: Session, caller: Caller, limit: int) -> list[ConversationOut]:
    """Every conversation, most recently active first: for admins watching for abuse."""
    if not caller.is_admin:
        raise Forbidden("Only admins can list every conversation.", code="role_not_allowed")
    conversations = list(
        session.scalars(
            select(Conversation)
            .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
            .limit(limit)
        )
    )
    return _conversations_out(session, caller.id, conversations)
