"""The chat's word lists, defined once (CHECK constraints, JSON schemas, the send rules)."""

from enum import StrEnum
from typing import Literal

from pesan.roles import Role


class MessageType(StrEnum):
    text = "text"
    image = "image"
    file = "file"
    booking = "booking"
    system = "system"
    notification = "notification"
    reschedule = "reschedule"


# What a client may send; `booking`, `system` and `reschedule` messages are posted by the
# server (a reschedule proposal is made through its booking).
ClientMessageType = Literal[
    MessageType.text, MessageType.image, MessageType.file, MessageType.notification
]

# A message's recipient is a user of any role; its sender also may be the server itself.
RecipientType = Role
SYSTEM_SENDER = "system"
SenderType = StrEnum("SenderType", [*(r.value for r in Role), SYSTEM_SENDER])  # type: ignore[misc]
