"""The provider's word lists, defined once (CHECK constraints, JSON schemas, query parameters)."""

from enum import StrEnum


class ProviderType(StrEnum):
    therapist = "therapist"
    place = "place"


class Presence(StrEnum):
    available = "available"
    busy = "busy"
    offline = "offline"
