"""Conversations and messages: who may talk to whom, sending, and read receipts.

Each function is one use case (or a step of one) inside the caller's transaction. What the
chat shows is in views.py.
"""

from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, bindparam, case, exists, insert, select, update
from sqlalchemy.orm import Session

from pesan.accounts import service as accounts
from pesan.accounts.models import User
from pesan.auth import Caller, ensure_party
from pesan.chat import views
from pesan.chat.enums import SYSTEM_SENDER, MessageType
from pesan.chat.models import Conversation, Message, Participant
from pesan.chat.schemas import (
    ConversationOut,
    MessageOut,
    ParticipantOut,
    ReadOut,
    SendMessageIn,
)
from pesan.chat.views import ConversationParties, Party
from pesan.db import Prepared, PreparedClaim, connection_of, table_of
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


class ConversationRecord(NamedTuple):
    """A conversation's row, read with a prepared statement (a plain tuple on SQLite)."""

    id: str
    pair_key: str
    created_at: datetime
    updated_at: datetime
    last_message_id: str | None


_conversations = table_of(Conversation)
_CONVERSATION_OF_PAIR = select(_conversations).where(_conversations.c.pair_key == bindparam("key"))
# Book Now asks it every time, so it is prepared; its columns named one by one, in
# ConversationRecord's order. (The read after a lost race stays with SQLAlchemy: it is rare.)
_CONVERSATION_RECORD_OF_PAIR = Prepared(
    select(*(_conversations.c[name] for name in ConversationRecord._fields)).where(
        _conversations.c.pair_key == bindparam("key")
    )
)
# Made unless a concurrent maker's row holds the pair's key (then nothing, and no row back).
# Prepared, as is the participants' insert: a pair's first booking makes its conversation.
_INSERT_CONVERSATION = PreparedClaim(_conversations, ["pair_key"])
_INSERT_PARTICIPANT = Prepared(insert(table_of(Participant)))


def conversation_between(
    session: Session, a: User | Party, b: User | Party
) -> ConversationRecord | Row[Any]:
    """The one conversation of this pair, made if new (safe against a concurrent maker).

    Read and written with Core, so no ORM object of it is left in the session for Core
    writes (a message's) to make stale: Book Now shares the group writer's session.
    """
    connection = connection_of(session)
    key = _pair_key(a.id, b.id)
    found = _CONVERSATION_RECORD_OF_PAIR.rows(connection, {"key": key})
    if found:
        return ConversationRecord(*found[0])
    now = utcnow()
    made = ConversationRecord(new_id(), key, now, now, None)
    if not _INSERT_CONVERSATION.claim(connection, made._asdict()):
        # A concurrent maker won (it waited on the key): theirs it is.
        return connection.execute(_CONVERSATION_OF_PAIR, {"key": key}).one()
    # Every column given (Prepared applies no defaults): joined_at as each row's default was.
    _INSERT_PARTICIPANT.run_many(
        connection,
        [
            {
                "conversation_id": made.id,
                "user_id": user_id,
                "joined_at": utcnow(),
                "unread_count": 0,
            }
            for user_id in (a.id, b.id)
        ],
    )
    return made  # what the row holds: what reading it back would answer


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
    conversation: ConversationParties,
    *,
    sender: Party | None,
    recipient: Party,
    content: str,
    message_type: MessageType,
    booking_id: str | None = None,
    original_language: str = "id",
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> MessageOut:
    """Store one message the server posts and its events. `sender=None` is the system
    (booking updates). Core statements, as for a send: its parties are already known."""
    now = now or utcnow()
    row = _message_row(
        conversation.id,
        sender,
        recipient,
        content,
        message_type,
        now,
        data=data,
        original_language=original_language,
        booking_id=booking_id,
    )
    connection = connection_of(session)
    _INSERT.run(connection, row)
    return _announce(session, connection, conversation, row, now)


def _message_row(
    conversation_id: str,
    sender: Party | None,
    recipient: Party,
    content: str,
    message_type: MessageType,
    now: datetime,
    **given: Any,
) -> dict[str, Any]:
    """A new message's row: every column, `given` over the defaults (`sender=None`: the
    system)."""
    return {
        "id": new_id(),
        "conversation_id": conversation_id,
        "sender_id": sender.id if sender else None,
        "sender_name": sender.name if sender else "pesan",
        "sender_type": sender.role if sender else SYSTEM_SENDER,
        "recipient_id": recipient.id,
        "recipient_name": recipient.name,
        "recipient_type": recipient.role,
        "content": content,
        "data": None,
        "message_type": message_type,
        "original_language": "id",
        "is_system_message": sender is None,
        "room_id": None,
        "booking_id": None,
        "read": False,
        "read_at": None,
        "expires_at": None,
        "session_id": None,
        "client_message_id": None,
        "created_at": now,
        **given,
    }


def _announce(
    session: Session,
    connection: Connection,
    conversation: ConversationParties,
    row: dict[str, Any],
    now: datetime,
) -> MessageOut:
    """After a message's insert: the conversation's last message, and the events."""
    _TOUCH_CONVERSATION.run(connection, {"cid": conversation.id, "mid": row["id"], "now": now})
    message = views.message_out(SimpleNamespace(**row))
    _record_sent(session, connection, conversation, message, now)
    return message


def _record_conversation_updated(
    session: Session, conversation: Conversation, user_ids: list[str]
) -> None:
    for user_id in user_ids:
        data = views.conversation_for(session, user_id, conversation)
        events.record(
            session, [user_id], "conversation.updated", data.model_dump(mode="json", by_alias=True)
        )


# The send path's statements, built once: a statement made per call costs more in Python
# (building it, then its cache key) than SQLite takes to run it.
_messages = table_of(Message)
_SENT_BEFORE = select(_messages).where(
    _messages.c.sender_id == bindparam("sender"),
    _messages.c.client_message_id == bindparam("cmid"),
)
_INSERT = Prepared(insert(_messages))
_INSERT_CLAIMING = PreparedClaim(_messages, ["sender_id", "client_message_id"])
_TOUCH_CONVERSATION = Prepared(
    update(table_of(Conversation))
    .where(table_of(Conversation).c.id == bindparam("cid"))
    .values(last_message_id=bindparam("mid"), updated_at=bindparam("now"))
)
_participants = table_of(Participant)
# A new message is unread for its recipient: +1 on their row, and both rows' counts back
# for the `conversation.updated` events, in one statement.
_COUNT_NEW_MESSAGE = Prepared(
    update(_participants)
    .where(_participants.c.conversation_id == bindparam("cid"))
    .values(
        unread_count=_participants.c.unread_count
        + case((_participants.c.user_id == bindparam("recipient"), 1), else_=0)
    )
    .returning(_participants.c.user_id, _participants.c.unread_count)
)
_COUNT_READ = (
    update(_participants)
    .where(
        _participants.c.conversation_id == bindparam("cid"),
        _participants.c.user_id == bindparam("reader"),
    )
    .values(unread_count=_participants.c.unread_count - bindparam("marked"))
    .returning(_participants.c.unread_count)
)


@dataclass
class Posted:
    message: MessageOut
    created: bool


def send_message(
    session: Session, caller: Caller, conversation_id: str, body: SendMessageIn
) -> Posted:
    """The hottest write: a handful of Core statements, no ORM objects.

    Reads the conversation and its parties in one statement, claims the clientMessageId with
    the insert itself (ON CONFLICT DO NOTHING on the unique key: a retry, or a concurrent one
    from another process that waits on the key, then answers the first message), and builds
    every event from what it already holds.
    """
    connection = connection_of(session)
    conversation = views.conversation_parties(connection, conversation_id)
    if conversation is None:
        raise NotFound("No such conversation.")
    ensure_party(caller, conversation.party_ids, "conversation")
    if body.message_type == MessageType.notification and caller.role is not Role.admin:
        raise ValidationFailed("messageType", "only admins send notifications")
    sender = conversation.party(caller.id)
    recipient = next(p for p in conversation.parties if p.id != caller.id)
    if body.recipient_id is not None and body.recipient_id != recipient.id:
        raise ValidationFailed("recipientId", "is not the other party of this conversation")
    if body.booking_id is not None and not _has_booking(session, conversation_id, body.booking_id):
        raise ValidationFailed("bookingId", "no such booking in this conversation")
    now = utcnow()
    row = _message_row(
        conversation_id,
        sender,
        recipient,
        body.content,
        body.message_type,
        now,
        original_language=body.original_language,
        room_id=body.room_id,
        booking_id=body.booking_id,
        expires_at=body.expires_at,
        session_id=body.session_id,
        client_message_id=body.client_message_id,
    )
    if not _insert_message(connection, row):
        # A retry, or the same clientMessageId raced in from another request: answer with the
        # stored message. (Claiming first saves a lookup on every new message.)
        earlier = _sent_before(connection, caller.id, body.client_message_id)
        if earlier is None:
            raise Conflict("This message could not be stored; send it again.")
        return Posted(views.message_out(_same_conversation(earlier, conversation_id)), False)
    return Posted(_announce(session, connection, conversation, row, now), created=True)


def _insert_message(connection: Connection, row: dict[str, Any]) -> bool:
    """Insert; False if this sender already stored this clientMessageId (nothing written)."""
    if row["client_message_id"] is None:
        _INSERT.run(connection, row)
        return True
    return _INSERT_CLAIMING.claim(connection, row)


def _record_sent(
    session: Session,
    connection: Connection,
    conversation: ConversationParties,
    message: MessageOut,
    now: datetime,
) -> None:
    """`message.created` for both parties, and each one's `conversation.updated`."""
    parties = conversation.party_ids
    message_json = message.model_dump(mode="json", by_alias=True)
    events.record(session, parties, "message.created", message_json)
    counts = _count_new_message(connection, conversation.id, message.recipient_id)
    # The parties see the same conversation but for their unread count: it is serialised
    # once, from values already checked, with the message's JSON made above.
    shared = ConversationOut.model_construct(
        id=conversation.id,
        participants=[_participant(p) for p in conversation.parties],
        last_message=None,
        unread_count=0,
        created_at=conversation.created_at,
        updated_at=now,
    ).model_dump(mode="json", by_alias=True)
    shared[_LAST_MESSAGE] = message_json
    for user_id in parties:
        data = {**shared, _UNREAD_COUNT: counts.get(user_id, 0)}
        events.record(session, [user_id], "conversation.updated", data)


_LAST_MESSAGE = ConversationOut.model_fields["last_message"].alias or "last_message"
_UNREAD_COUNT = ConversationOut.model_fields["unread_count"].alias or "unread_count"


def _participant(party: Party) -> ParticipantOut:
    return ParticipantOut(id=party.id, name=party.name, role=Role(party.role))


def _count_new_message(
    connection: Connection, conversation_id: str, recipient_id: str
) -> dict[str, int]:
    rows = _COUNT_NEW_MESSAGE.rows(connection, {"cid": conversation_id, "recipient": recipient_id})
    return {uid: int(n) for uid, n in rows}


def _sent_before(
    connection: Connection, sender_id: str, client_message_id: str | None
) -> Any | None:
    """The row of this sender's message with this clientMessageId, if any."""
    if client_message_id is None:
        return None
    return connection.execute(
        _SENT_BEFORE, {"sender": sender_id, "cmid": client_message_id}
    ).first()


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


def _same_conversation(earlier: Any, conversation_id: str) -> Any:
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
    unread = int(
        session.connection()
        .execute(_COUNT_READ, {"cid": conversation_id, "reader": caller.id, "marked": marked})
        .scalar_one()
    )
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
