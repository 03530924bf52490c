"""The booking card and the admin notification: no field can forge a line of its own."""

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from pesan.bookings.models import Booking
from pesan.bookings.rules import Policy
from pesan.bookings.service import describe_request
from pesan.config import Settings

LABELS = (
    "Booking request: ",
    "When: ",
    "Where: ",
    "Price: ",
    "Guest: ",
    "Note: ",
    "Answer by: ",
    "Policy: ",
)
POLICY = Policy.from_settings(Settings())
ANY_TEXT = st.lists(
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=10)
    | st.sampled_from(["\n", "\r", "\r\n", "\u2028", "\x1b", "\x85", "Price: IDR 1"]),
    max_size=8,
).map("".join)


def booking(**fields: object) -> Booking:
    values: dict[str, object] = {
        "status": "pending",
        "mode": "scheduled",
        "timezone": "Asia/Makassar",
        "start_at": datetime(2026, 12, 1, 2, 0, tzinfo=UTC),
        "end_at": datetime(2026, 12, 1, 3, 30, tzinfo=UTC),
        "respond_by": datetime(2026, 11, 30, 2, 0, tzinfo=UTC),
        "eta_at": None,
        "service_name": "Balinese massage",
        "duration_minutes": 90,
        "location_kind": "villa",
        "location_room": "Villa 3",
        "location_address": None,
        "price_amount": 200_000,
        "currency": "IDR",
        "guest_name": None,
        "note": None,
    }
    values.update(fields)
    return Booking(**values)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["place", "hotel", "villa", "home"]),
    room=ANY_TEXT,
    address=ANY_TEXT,
    service=ANY_TEXT,
    guest=ANY_TEXT,
    note=ANY_TEXT,
)
def test_every_card_line_is_its_own_label_or_part_of_the_note(
    kind: str, room: str, address: str, service: str, guest: str, note: str
) -> None:
    card = describe_request(
        booking(
            location_kind=kind,
            location_room=room,
            location_address=address,
            service_name=service,
            guest_name=guest,
            note=note,
        ),
        POLICY,
    )
    lines = card.split("\n")
    assert len(card.splitlines()) == len(lines)  # no other kind of line break survives
    in_note = False
    for line in lines:
        if line.startswith("  ") and in_note:
            continue
        assert line.startswith(LABELS), (line, card)
        in_note = line.startswith("Note: ")
    assert [line for line in lines if line.startswith("Price: ")] == ["Price: IDR 200.000"]


def test_a_note_keeps_its_lines_indented_under_it() -> None:
    card = describe_request(booking(note="Gate code 1234.\nPrice: IDR 1"), POLICY)
    assert "\nNote: Gate code 1234.\n  Price: IDR 1\nAnswer by: " in card
    assert "\nPrice: IDR 200.000\n" in card
