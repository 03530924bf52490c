"""Keyset paging: one page of rows and the cursor that continues after it."""

from collections.abc import Callable, Sequence
from typing import TypeVar

from pesan.errors import ValidationFailed
from pesan.ids import is_valid

T = TypeVar("T")


def take_page(
    rows: Sequence[T], limit: int, cursor_of: Callable[[T], str]
) -> tuple[list[T], str | None]:
    """`rows` came from `LIMIT limit + 1`: the page, and the next cursor if there is more."""
    page = list(rows[:limit])
    more = len(rows) > limit
    return page, (cursor_of(page[-1]) if more and page else None)


def id_cursor(cursor: str | None, field: str = "cursor") -> str | None:
    """A cursor that is an id this server made, or a 422 naming the field."""
    if cursor is None:
        return None
    if not is_valid(cursor):
        raise ValidationFailed(field, "not a cursor this server made")
    return cursor
