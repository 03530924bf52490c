"""Who is who in the marketplace. Plain data, no I/O."""

from enum import StrEnum


class Role(StrEnum):
    customer = "customer"
    therapist = "therapist"
    place = "place"
    hotel = "hotel"
    villa = "villa"
    agent = "agent"
    admin = "admin"


PROVIDERS = frozenset({Role.therapist, Role.place})
BOOKERS = frozenset({Role.customer, Role.hotel, Role.villa, Role.agent})
SELF_REGISTERED = frozenset(Role) - {Role.admin}

LEGACY_ROLE_NAMES = {"user": Role.customer}


def parse_role(value: str) -> Role:
    """A role from its name, with the legacy `user` meaning customer."""
    return LEGACY_ROLE_NAMES.get(value) or Role(value)


def sql_in(values: object) -> str:
    """`'a', 'b'` for a CHECK constraint over enum values."""
    return ", ".join(f"'{v}'" for v in values)  # type: ignore[attr-defined]
