from pesan.schemas import CamelModel, Timestamp


class AdminMessageOut(CamelModel):
    id: str
    kind: str
    title: str
    body: str
    booking_id: str | None
    conversation_id: str | None
    created_at: Timestamp
    read_at: Timestamp | None
