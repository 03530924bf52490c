from typing import Any

from pydantic import AliasChoices, Field, field_validator

from pesan.chat.enums import ClientMessageType, MessageType, RecipientType, SenderType
from pesan.roles import Role
from pesan.schemas import CamelModel, InputModel, SingleLine, Timestamp, reject_nul

LANGUAGE_TAG = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$"
MAX_CONTENT = 4000
MAX_RAW_CONTENT = 2 * MAX_CONTENT  # surrounding whitespace is kept, within reason


class MessageOut(CamelModel):
    id: str
    conversation_id: str
    sender_id: str = Field(description="A user id, or `system` for messages the server posts.")
    sender_name: str
    sender_type: SenderType
    recipient_id: str
    recipient_name: str
    recipient_type: RecipientType
    content: str
    data: dict[str, Any] | None = Field(
        None,
        description="Structured content of a card the server posts: for `reschedule`, "
        "`proposalId`, `bookingId`, `startAt` and `endAt`.",
    )
    message_type: MessageType
    original_language: str
    is_system_message: bool
    room_id: str | None
    booking_id: str | None
    read: bool
    read_at: Timestamp | None
    expires_at: Timestamp | None
    session_id: str | None
    client_message_id: str | None
    created_at: Timestamp


class ParticipantOut(CamelModel):
    id: str
    name: str
    role: Role


class ConversationOut(CamelModel):
    id: str
    participants: list[ParticipantOut]
    last_message: MessageOut | None
    unread_count: int = Field(description="Messages to the caller not yet read.")
    created_at: Timestamp
    updated_at: Timestamp


class OpenConversationIn(InputModel):
    participant_id: SingleLine = Field(min_length=1, max_length=64)


class SendMessageIn(CamelModel):
    """A chat message. Legacy names: `message` for content, `receiverId`, `receivername`."""

    content: str = Field(
        min_length=1,
        max_length=MAX_RAW_CONTENT,
        validation_alias=AliasChoices("content", "message"),
        description="1 to 4000 characters after trimming; stored exactly as sent.",
    )
    message_type: ClientMessageType = Field(
        MessageType.text, validation_alias=AliasChoices("messageType", "message_type")
    )
    client_message_id: SingleLine | None = Field(
        None,
        min_length=1,
        max_length=100,
        validation_alias=AliasChoices("clientMessageId", "client_message_id"),
        description="Sending the same id twice stores the message once.",
    )
    original_language: str = Field(
        "id",
        pattern=LANGUAGE_TAG,
        max_length=35,
        validation_alias=AliasChoices("originalLanguage", "original_language"),
    )
    expires_at: Timestamp | None = Field(
        None, validation_alias=AliasChoices("expiresAt", "expiresat", "expires_at")
    )
    session_id: SingleLine | None = Field(
        None, max_length=200, validation_alias=AliasChoices("sessionId", "session_id")
    )
    room_id: SingleLine | None = Field(
        None, max_length=200, validation_alias=AliasChoices("roomId", "room_id")
    )
    booking_id: SingleLine | None = Field(
        None, max_length=64, validation_alias=AliasChoices("bookingId", "bookingid", "booking_id")
    )
    recipient_id: SingleLine | None = Field(
        None,
        max_length=64,
        validation_alias=AliasChoices("recipientId", "receiverId", "recipient_id"),
        description="Optional: the other party, checked against the conversation.",
    )
    recipient_name: SingleLine | None = Field(
        None,
        max_length=200,
        validation_alias=AliasChoices("recipientName", "receivername", "receiverName"),
        description="Ignored: the server uses the recipient's real name.",
    )

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        return reject_nul(value)

    @field_validator("content")
    @classmethod
    def _content(cls, value: str) -> str:
        length = len(value.strip())
        if length == 0:
            raise ValueError("must not be empty")
        if length > MAX_CONTENT:
            raise ValueError(f"must be at most {MAX_CONTENT} characters")
        return value


class ReadIn(InputModel):
    up_to_message_id: SingleLine = Field(min_length=1, max_length=64)


class ReadOut(CamelModel):
    conversation_id: str
    reader_id: str
    up_to_message_id: str
    read_at: Timestamp
    marked: int = Field(description="How many messages this call marked read.")
    unread_count: int


class MessagePage(CamelModel):
    items: list[MessageOut]
    next_cursor: str | None = Field(
        None,
        description="With `after` (or no cursor): pass as `after` for newer messages. "
        "With `before`: pass as `before` for older ones. Null at the end.",
    )
