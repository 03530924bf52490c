"""Who is who in the marketplace. Plain data, no I/O."""

from enum import StrEnum

from pesan.providers.enums import ProviderType


class Role(StrEnum):
    customer = "customer"
    therapist = "therapist"
    place = "place"
    hotel = "hotel"
    villa = "villa"
    agent = "agent"
    admin = "admin"


PROVIDERS = frozenset(Role(t.value) for t in ProviderType)
BOOKERS = frozenset({Role.customer, Role.hotel, Role.villa, Role.agent})
SELF_REGISTERED = tuple(r for r in Role if r is not Role.admin)

LEGACY_ROLE_NAMES = {"user": Role.customer}
# What registration takes: every role but admin, and the legacy name `user` (a customer).
SelfRole = StrEnum("SelfRole", [*(r.value for r in SELF_REGISTERED), *LEGACY_ROLE_NAMES])  # type: ignore[misc]


def parse_role(value: str) -> Role:
    """A role from its name, with the legacy `user` meaning customer."""
    return LEGACY_ROLE_NAMES.get(value) or Role(value)
