from pydantic import Field

from pesan.bookings.enums import Actor, BookingMode, BookingStatus, LocationKind, ProposalStatus
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
    timezone: str = Field(description="The provider's IANA zone: show this booking's times in it.")
    respond_by: Timestamp | None = Field(
        description="While pending: when the provider must have answered, else it expires."
    )
    eta_at: Timestamp | None
    status_reason: str | None = Field(description="The reason given on decline or cancel.")
    ended_by: Actor | None = Field(
        description="Who ended it (declined, cancelled, completed, no-show, expired)."
    )
    late_cancellation: bool = Field(
        description="Cancelled after the policy's window closed (docs/bookings.md)."
    )
    counts_against: Actor | None = Field(
        description="The party this ending counts against (booker or provider), if anyone."
    )
    conversation_id: str
    created_at: Timestamp
    updated_at: Timestamp


class PolicyOut(CamelModel):
    """The cancellation and lateness policy, the same for both sides, for this booking."""

    summary: str = Field(description="The policy in one paragraph, times in the provider's zone.")
    late_cancellation_from: Timestamp = Field(
        description="From then on, cancelling a confirmed booking is late (for either side)."
    )
    no_show_from: Timestamp = Field(description="From then on the provider may record a no-show.")
    provider_late_minutes: int = Field(
        description="The customer may cancel without penalty when the provider is this late."
    )


class BookNowOut(CamelModel):
    booking: BookingOut
    conversation: ConversationOut
    message: MessageOut
    policy: PolicyOut


class SlotOut(CamelModel):
    start_at: Timestamp
    end_at: Timestamp


class AvailabilityOut(CamelModel):
    timezone: str = Field(description="The provider's IANA zone; the times themselves are UTC.")
    items: list[SlotOut] = Field(description="Free start times, oldest first.")


class ProposalIn(InputModel):
    start_at: Timestamp = Field(description="The new start; the length stays the same.")


class ProposalOut(CamelModel):
    id: str
    booking_id: str
    proposed_by: Actor = Field(description="`booker` or `provider`.")
    start_at: Timestamp
    end_at: Timestamp
    status: ProposalStatus
    created_at: Timestamp
    decided_at: Timestamp | None


class ReasonIn(InputModel):
    reason: SingleLine | None = Field(None, max_length=500)


class OnTheWayIn(InputModel):
    eta_minutes: int = Field(ge=1, le=240)
