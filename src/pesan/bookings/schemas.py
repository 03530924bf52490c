from pydantic import Field

from pesan.bookings.enums import BookingMode, BookingStatus, LocationKind
from pesan.chat.schemas import ConversationOut, MessageOut
from pesan.schemas import CamelModel, InputModel, Money, MultiLine, SingleLine, Timestamp


class Location(CamelModel):
    kind: LocationKind
    address: str | None = Field(None, max_length=500, description="Needed for `home`.")
    room: str | None = Field(None, max_length=50, description="Needed for `hotel` and `villa`.")


class LocationIn(InputModel):
    kind: LocationKind
    address: SingleLine | None = Field(None, max_length=500, description="Needed for `home`.")
    room: SingleLine | None = Field(
        None, max_length=50, description="Needed for `hotel` and `villa`."
    )


class BookNowIn(InputModel):
    provider_id: SingleLine = Field(min_length=1, max_length=64)
    service_id: SingleLine = Field(min_length=1, max_length=64)
    mode: BookingMode = BookingMode.scheduled
    start_at: Timestamp | None = Field(
        None, description="Required for `scheduled` (in the future); `now` means the request time."
    )
    location: LocationIn
    note: MultiLine | None = Field(None, max_length=1000)
    guest_name: SingleLine | None = Field(None, max_length=100)


class BookingOut(CamelModel):
    id: str
    status: BookingStatus
    mode: BookingMode
    customer_id: str = Field(description="The booker: a customer, hotel, villa or agent.")
    customer_name: str
    provider_id: str
    provider_name: str
    service_id: str
    service_name: str
    duration_minutes: int
    start_at: Timestamp
    end_at: Timestamp
    location: Location
    note: str | None
    guest_name: str | None
    price: Money
    eta_at: Timestamp | None
    status_reason: str | None = Field(description="The reason given on decline or cancel.")
    conversation_id: str
    created_at: Timestamp
    updated_at: Timestamp


class BookNowOut(CamelModel):
    booking: BookingOut
    conversation: ConversationOut
    message: MessageOut


class ReasonIn(InputModel):
    reason: SingleLine | None = Field(None, max_length=500)


class OnTheWayIn(InputModel):
    eta_minutes: int = Field(ge=1, le=240)
