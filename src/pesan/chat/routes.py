from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from pesan import metrics
from pesan.chat import service, views
from pesan.chat.schemas import (
    ConversationOut,
    MessageOut,
    MessagePage,
    OpenConversationIn,
    ReadIn,
    ReadOut,
    SendMessageIn,
)
from pesan.db import Database
from pesan.deps import CurrentUser, Db
from pesan.schemas import Limit as PageLimit
from pesan.schemas import Page, json_response, problem_responses
from pesan.throttle import Limit, Throttle

router = APIRouter(prefix="/conversations", tags=["chat"])

MessageCursor = Annotated[str | None, Query(max_length=64)]


@router.get("", response_model=Page[ConversationOut])
def list_conversations(
    caller: CurrentUser,
    db: Db,
    limit: PageLimit = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The caller's conversations, most recently active first."""
    with db.reader() as session:
        items, next_cursor = views.list_conversations(session, caller, limit, cursor)
    return json_response(Page[ConversationOut](items=items, next_cursor=next_cursor))


@router.post("", response_model=ConversationOut)
def open_conversation(body: OpenConversationIn, caller: CurrentUser, db: Db) -> ConversationOut:
    """The caller's 1:1 conversation with `participantId`, made if new."""
    with db.transaction() as session:
        return service.open_conversation(session, caller, body.participant_id)


@router.get("/{conversation_id}", response_model=ConversationOut)
def get_conversation(conversation_id: str, caller: CurrentUser, db: Db) -> ConversationOut:
    with db.reader() as session:
        return views.get_conversation(session, caller, conversation_id)


@router.get("/{conversation_id}/messages", response_model=MessagePage)
def list_messages(
    conversation_id: str,
    caller: CurrentUser,
    db: Db,
    after: MessageCursor = None,
    before: MessageCursor = None,
    cursor: Annotated[MessageCursor, Query(description="Same as `after`.")] = None,
    limit: PageLimit = 50,
) -> Response:
    """Oldest first. No cursor: from the start; `after`: newer than it; `before`: the page
    just older than it."""
    with db.reader() as session:
        items, next_cursor = views.list_messages(
            session, caller, conversation_id, after=after or cursor, before=before, limit=limit
        )
    return json_response(MessagePage(items=items, next_cursor=next_cursor))


@router.post(
    "/{conversation_id}/messages",
    status_code=201,
    response_model=MessageOut,
    responses={
        200: {"model": MessageOut, "description": "A repeat of a clientMessageId."},
        **problem_responses(429),
    },
)
async def send_message(
    conversation_id: str, body: SendMessageIn, caller: CurrentUser, request: Request
) -> Response:
    # The database and the limits straight from the app's state: on the hottest route, each
    # dependency FastAPI solves costs ~20 us, a few per cent of a send.
    db: Database = request.app.state.db
    throttle: Throttle = request.app.state.throttle
    await throttle.check(Limit.send, caller.id)
    posted = await db.write(
        lambda session: service.send_message(session, caller, conversation_id, body), orm=False
    )
    if posted.created:
        metrics.MESSAGES_SENT.labels(type=posted.message.message_type).inc()
    # Already a MessageOut: answered as is, without FastAPI validating it a second time.
    return json_response(posted.message, 201 if posted.created else 200)


@router.post("/{conversation_id}/read", response_model=ReadOut)
def mark_read(conversation_id: str, body: ReadIn, caller: CurrentUser, db: Db) -> ReadOut:
    with db.transaction() as session:
        return service.mark_read(session, caller, conversation_id, body.up_to_message_id)
