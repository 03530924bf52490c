"""JSON shapes shared by every route: camelCase models, pages, money and timestamps."""

import base64
import functools
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any, Generic, TypeVar, get_args

from fastapi import Response
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

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


def _control_characters(value: str, allowed: str = "") -> list[str]:
    """Control characters and line or paragraph separators in `value`, less `allowed`."""
    if value.isprintable():  # none of them (Cc, Zl and Zp are all unprintable): found in C
        return []
    return [
        ch for ch in value if ch not in allowed and unicodedata.category(ch) in ("Cc", "Zl", "Zp")
    ]


def _single_line(value: str) -> str:
    if _control_characters(value):
        raise ValueError("must be one line, without control characters or line breaks")
    return value


def _multi_line(value: str) -> str:
    if _control_characters(value, allowed="\n\r\t"):
        raise ValueError("must not contain control characters (line breaks and tabs are fine)")
    return value


def one_line(text: str) -> str:
    """`text` shown on one line of a card or notification: breaks and controls become spaces
    (rows written before single-line fields were enforced, or names from elsewhere)."""
    if text.isprintable():  # nothing to replace: the common case, without a call per character
        return text
    return "".join(" " if _control_characters(ch) else ch for ch in text)


def indented_lines(text: str, indent: str = "  ") -> str:
    """Multi-line text inside a card: every line after the first indented, so none of them
    can pass for a line of the card itself."""
    lines = [one_line(line) for line in text.replace("\r\n", "\n").split("\n")]
    return f"\n{indent}".join(lines)


def verbatim(value: str) -> str:
    """Marks a field whose text is taken as typed (a password): only NUL is refused."""
    return value


class _Published:
    """Adds a JSON-schema `pattern`, so the OpenAPI schema tells clients (and fuzzers) the rule."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def __get_pydantic_json_schema__(self, core: Any, handler: GetJsonSchemaHandler) -> Any:
        schema = handler(core)
        schema["pattern"] = self.pattern
        return schema


SINGLE_LINE_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]*$"

# Names, rooms, reasons, areas, ids: one line of text. Every string in a request body is one of
# these unless its field is declared `MultiLine` (a bio, a note): see InputModel.
SingleLine = Annotated[str, AfterValidator(_single_line), _Published(SINGLE_LINE_PATTERN)]
MultiLine = Annotated[str, AfterValidator(_multi_line)]


def _declares(annotation: object, rule: object) -> bool:
    """Whether a field's type (or a member of its union) carries this validator."""
    if any(getattr(m, "func", None) is rule for m in getattr(annotation, "__metadata__", ())):
        return True
    return any(_declares(arg, rule) for arg in get_args(annotation))


class InputModel(CamelModel):
    """A request body: whitespace trimmed at the edges of every string, no NUL characters, and
    every string one line of text unless its field is declared `MultiLine`."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, str_strip_whitespace=True
    )

    @field_validator("*")
    @classmethod
    def _plain_text(cls, value: object, info: ValidationInfo) -> object:
        reject_nul(value)
        check = _rule_of(cls, info.field_name or "")
        for text in _strings(value):
            check(text)
        return value


@functools.cache
def _rule_of(model: type[BaseModel], field_name: str) -> Callable[[str], str]:
    """`_text_rule` of a model's field, worked out once: validation runs on every request."""
    return _text_rule(model.model_fields.get(field_name))


def _text_rule(field: FieldInfo | None) -> Callable[[str], str]:
    """A field's text rule: one line, unless its type is declared `MultiLine` or verbatim."""
    for rule in (verbatim, _multi_line):
        if field is not None and (
            any(getattr(m, "func", None) is rule for m in field.metadata)
            or _declares(field.annotation, rule)
        ):
            return rule
    return _single_line


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [item for item in value if isinstance(item, str)]
    return []


def _require_text(value: object) -> object:
    """RFC 3339 text only: a bare number is not a time here (pydantic would take it as epoch)."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value[:4].isdigit() or "-" not in value:
        raise ValueError("a time is RFC 3339 text, such as 2026-11-24T09:30:00+08:00")
    return value


# The times pesan takes and stores, on both databases and in any time zone: a month short of
# year 10000 leaves room for a booking's length, its answer windows and any zone's offset.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 1, tzinfo=UTC)
TIME_RANGE = "from 1970-01-01T00:00:00Z to 9999-11-30T23:59:59Z"


def _require_offset(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a time needs an offset, such as Z or +08:00")
    try:
        utc = as_utc(value)
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError(f"a time must be {TIME_RANGE}")
    return utc


Timestamp = Annotated[
    datetime,
    BeforeValidator(_require_text),
    AfterValidator(_require_offset),
    PlainSerializer(rfc3339, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": f"RFC 3339 with an offset, {TIME_RANGE}.",
        },
        mode="validation",
    ),
]
_timestamp = TypeAdapter(Timestamp)


def _require_day_in_range(value: date) -> date:
    if not EARLIEST.date() <= value < LATEST.date():
        raise ValueError("a date must be from 1970-01-01 to 9999-11-30")
    return value


# A calendar date (a day off), held to the same range as every time.
Day = Annotated[date, AfterValidator(_require_day_in_range)]


def parse_timestamp(text: str) -> datetime | None:
    """A time from text (a cursor's part), held to the same rules as every request's times."""
    try:
        return _timestamp.validate_python(text)
    except ValidationError:
        return None


MAX_AMOUNT = 10**15


class Money(CamelModel):
    amount: int = Field(
        ge=0,
        le=MAX_AMOUNT,
        description="In the currency's smallest unit in use (IDR: rupiah); 0 to 10^15.",
    )
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


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    """A model the route already built, as its JSON answer (camelCase), serialised once.

    For hot routes: FastAPI would validate the returned model against `response_model` again
    before serialising it. The route keeps `response_model` for the OpenAPI schema.
    """
    return Response(
        model.model_dump_json(by_alias=True), status_code, media_type="application/json"
    )
