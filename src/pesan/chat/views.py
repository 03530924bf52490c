"""What the chat shows: conversations with their unread counts, message history, and the
mappers from rows to JSON shapes. Reads only; changes live in service.py."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.orm import Session

from pesan.accounts.models import User
from pesan.auth import Caller, ensure_visible
from pesan.chat.enums import SYSTEM_SENDER, MessageType
from pesan.chat.models import Conversation, Message, Participant
from pesan.chat.schemas import ConversationOut, MessageOut, ParticipantOut
from pesan.db import Prepared, table_of
from pesan.errors import Forbidden, NotFound, ValidationFailed
from pesan.ids import is_valid
from pesan.paging import take_page
from pesan.roles import Role
from pesan.schemas import decode_cursor, encode_cursor, parse_timestamp
from pesan.timeutil import rfc3339


def message_out(message: Message | Any) -> MessageOut:
    """The JSON shape of a message, from its ORM object or a row with the same columns."""
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
        data=message.data,
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


def party_ids(session: Session, conversation_id: str) -> list[str]:
    if not is_valid(conversation_id):  # e.g. a typing frame naming no real conversation
        return []
    return list(
        session.scalars(
            select(Participant.user_id).where(Participant.conversation_id == conversation_id)
        )
    )


@dataclass(frozen=True)
class Party:
    id: str
    name: str
    role: str


@dataclass(frozen=True)
class ConversationParties:
    """A conversation's row and its parties (ordered by id, as the JSON lists them)."""

    id: str
    created_at: datetime
    parties: list[Party]

    @property
    def party_ids(self) -> list[str]:
        return [p.id for p in self.parties]

    def party(self, user_id: str) -> Party:
        return next(p for p in self.parties if p.id == user_id)


_users, _participants, _messages = table_of(User), table_of(Participant), table_of(Message)
_conversations = table_of(Conversation)
_CONVERSATION_PARTIES = Prepared(
    select(_conversations.c.created_at, _users.c.id, _users.c.name, _users.c.role)
    .join(_participants, _participants.c.conversation_id == _conversations.c.id)
    .join(_users, _users.c.id == _participants.c.user_id)
    .where(_conversations.c.id == bindparam("cid"))
    .order_by(_users.c.id)
)


_CONVERSATION = select(_conversations).where(_conversations.c.id == bindparam("cid"))
_UNREAD = Prepared(
    select(_participants.c.unread_count).where(
        _participants.c.conversation_id == bindparam("cid"),
        _participants.c.user_id == bindparam("uid"),
    )
)


class ConversationRow(Protocol):
    """What a conversation's JSON is made from: its ORM object, or its row read with Core."""

    @property
    def id(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def last_message_id(self) -> str | None: ...


def conversation_row(connection: Connection, conversation_id: str) -> ConversationRow:
    """The conversation's row, read with Core: no ORM object that a Core write could leave
    stale in the session (the group writer's session outlives each job)."""
    row = connection.execute(_CONVERSATION, {"cid": conversation_id}).first()
    if row is None:
        raise NotFound("No such conversation.")
    return row


def unread_count(connection: Connection, conversation_id: str, user_id: str) -> int:
    rows = _UNREAD.rows(connection, {"cid": conversation_id, "uid": user_id})
    return int(rows[0][0] or 0) if rows else 0


def conversation_out(
    conversation: ConversationParties, last_message: MessageOut, unread: int
) -> ConversationOut:
    """The JSON of a conversation whose parties and newest message the caller already holds."""
    return ConversationOut(
        id=conversation.id,
        participants=[
            ParticipantOut(id=p.id, name=p.name, role=Role(p.role)) for p in conversation.parties
        ],
        last_message=last_message,
        unread_count=unread,
        created_at=conversation.created_at,
        updated_at=last_message.created_at,
    )


def conversation_parties(
    connection: Connection, conversation_id: str
) -> ConversationParties | None:
    """One prebuilt statement for the send path: the conversation and who is in it."""
    if not is_valid(conversation_id):
        return None
    rows = _CONVERSATION_PARTIES.rows(connection, {"cid": conversation_id})
    if not rows:
        return None
    return ConversationParties(
        conversation_id, rows[0][0], [Party(uid, name, role) for _, uid, name, role in rows]
    )


def visible_conversation(session: Session, caller: Caller, conversation_id: str) -> Conversation:
    conversation = session.get(Conversation, conversation_id) if is_valid(conversation_id) else None
    if conversation is None:
        raise NotFound("No such conversation.")
    ensure_visible(caller, party_ids(session, conversation_id), "conversation")
    return conversation


def unread_counts(session: Session, user_id: str, conversation_ids: list[str]) -> dict[str, int]:
    """The user's unread messages per conversation: the counters on their participant rows."""
    if not conversation_ids:
        return {}
    rows = session.execute(
        select(Participant.conversation_id, Participant.unread_count).where(
            Participant.user_id == user_id, Participant.conversation_id.in_(conversation_ids)
        )
    )
    counts = dict.fromkeys(conversation_ids, 0)
    counts.update({cid: int(n) for cid, n in rows})
    return counts


def conversations_out(
    session: Session, viewer_id: str, conversations: Sequence[ConversationRow]
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
    last = {m.id: m for m in session.execute(select(_messages).where(_messages.c.id.in_(last_ids)))}
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
    session: Session, viewer_id: str, conversation: ConversationRow
) -> ConversationOut:
    return conversations_out(session, viewer_id, [conversation])[0]


def get_conversation(session: Session, caller: Caller, conversation_id: str) -> ConversationOut:
    conversation = visible_conversation(session, caller, conversation_id)
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
        at, conversation_id = _conversation_cursor(cursor)
        query = query.where(
            (Conversation.updated_at < at)
            | ((Conversation.updated_at == at) & (Conversation.id < conversation_id))
        )
    conversations, next_cursor = take_page(
        list(session.scalars(query)),
        limit,
        lambda c: encode_cursor(rfc3339(c.updated_at), c.id),
    )
    return conversations_out(session, caller.id, conversations), next_cursor


def _conversation_cursor(cursor: str) -> tuple[datetime, str]:
    parts = decode_cursor(cursor, 2)
    at = parse_timestamp(parts[0]) if parts is not None else None
    if parts is None or at is None or not is_valid(parts[1]):
        raise ValidationFailed("cursor", "not a cursor this server made")
    return at, parts[1]


def message_in(session: Session, conversation_id: str, message_id: str, field: str) -> Message:
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
    visible_conversation(session, caller, conversation_id)
    if after and before:
        raise ValidationFailed("before", "use either after or before, not both")
    # Rows, not ORM objects: a page is up to 200 messages, each mapped once, to JSON.
    messages = _messages
    query = select(messages).where(messages.c.conversation_id == conversation_id)
    if before:
        anchor = message_in(session, conversation_id, before, "before")
        newest_first = session.execute(
            query.where(messages.c.id < anchor.id).order_by(messages.c.id.desc()).limit(limit + 1)
        ).all()
        rows, next_cursor = take_page(newest_first, limit, lambda m: m.id)
        return [message_out(m) for m in reversed(rows)], next_cursor
    if after:
        anchor = message_in(session, conversation_id, after, "after")
        query = query.where(messages.c.id > anchor.id)
    rows, next_cursor = take_page(
        session.execute(query.order_by(messages.c.id).limit(limit + 1)).all(),
        limit,
        lambda m: m.id,
    )
    return [message_out(m) for m in rows], next_cursor


def booking_message(session: Session, booking_id: str) -> Message | None:
    """The card a booking was requested with (its first `booking` message)."""
    return session.scalar(
        select(Message)
        .where(Message.booking_id == booking_id, Message.message_type == MessageType.booking)
        .order_by(Message.id)
        .limit(1)
    )


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
    return conversations_out(session, caller.id, conversations)
