"""JSON shapes shared by every route: camelCase models, pages, money and timestamps."""

import base64
from datetime import datetime
from typing import Annotated, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
)
from pydantic.alias_generators import to_camel

from pesan.timeutil import as_utc, rfc3339

T = TypeVar("T")


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


def reject_nul(value: object) -> object:
    """No NUL characters in text: PostgreSQL cannot store them, and no person types one."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if isinstance(value, list | tuple):
        for item in value:
            reject_nul(item)
    return value


class InputModel(CamelModel):
    """A request body: whitespace trimmed at the edges of every string, no NUL characters."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, str_strip_whitespace=True
    )

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        return reject_nul(value)


def _require_text(value: object) -> object:
    """RFC 3339 text only: a bare number is not a time here (pydantic would take it as epoch)."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value[:4].isdigit() or "-" not in value:
        raise ValueError("a time is RFC 3339 text, such as 2026-11-24T09:30:00+08:00")
    return value


def _require_offset(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a time needs an offset, such as Z or +08:00")
    return as_utc(value)


Timestamp = Annotated[
    datetime,
    BeforeValidator(_require_text),
    AfterValidator(_require_offset),
    PlainSerializer(rfc3339, return_type=str),
]


class Money(CamelModel):
    amount: int = Field(ge=0, description="In the currency's smallest unit in use (IDR: rupiah).")
    currency: str = Field("IDR", pattern=r"^[A-Z]{3}$", description="ISO 4217 code.")


class Page(CamelModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


Limit = Annotated[int, Field(ge=1, le=200, description="Page size (default 50, max 200).")]


def encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, count: int) -> list[str] | None:
    """The parts of a cursor this server made, or None if it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
    except (ValueError, UnicodeDecodeError):
        return None
    return parts if len(parts) == count else None


class FieldError(CamelModel):
    field: str = Field(description="The offending field, camelCase, dotted: `location.room`.")
    message: str


class ProblemOut(CamelModel):
    """An error (RFC 9457 problem details), sent as `application/problem+json`."""

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable, snake_case: `invalid_transition`, `not_found`, ...")
    request_id: str | None = Field(description="Also sent as the X-Request-ID header.")
    errors: list[FieldError] | None = Field(None, description="Validation errors only.")
    free_start_times: list[str] | None = Field(
        None,
        description="`slot_unavailable` only: the nearest free start times (UTC, RFC 3339).",
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI `responses` entries for problem+json answers."""
    from pesan.errors import PROBLEM_JSON

    return {
        status: {
            "description": "Problem details",
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemOut"}}},
        }
        for status in statuses
    }
