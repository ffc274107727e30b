"""Cursor pagination: `{"items": [...], "next_cursor": "..." | null}` on every list."""

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, NamedTuple, Protocol, TypeVar

from fastapi import Query
from pydantic import BaseModel

from shared.errors import FieldError, InvalidInput

T = TypeVar("T")
R = TypeVar("R")

MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    next_cursor: str | None = None


def encode_cursor(position: dict[str, Any]) -> str:
    """An opaque cursor for a position (the sort key of the last item)."""
    return base64.urlsafe_b64encode(json.dumps(position, default=str).encode()).decode()


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """The position inside a cursor; a 422 naming `cursor` if it is not one of ours."""
    if not cursor:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, UnicodeDecodeError):
        value = None
    if not isinstance(value, dict):
        raise InvalidInput([FieldError("cursor", "not a valid cursor")])
    return value


def decode_position(cursor: str | None, **fields: Callable[[str], Any]) -> dict[str, Any] | None:
    """The position inside a cursor with each named field converted (`id=uuid.UUID`,
    `external_id=str`); None without a cursor. A cursor that is not one of ours, lacks a
    field or holds a malformed one is a 422 naming `cursor`, never a 500."""
    position = decode_cursor(cursor)
    if position is None:
        return None
    try:
        return {name: convert(str(position[name])) for name, convert in fields.items()}
    except (KeyError, ValueError, TypeError):
        raise InvalidInput([FieldError("cursor", "not a valid cursor")]) from None


MAX_CURSOR_LENGTH = 1024
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
Cursor = Annotated[
    str | None,
    Query(max_length=MAX_CURSOR_LENGTH, description="`next_cursor` of the previous page"),
]


class CreatedAfter(NamedTuple):
    """Keyset position for lists ordered by `(created_at, id)`: the last item shown."""

    created_at: datetime
    id: uuid.UUID


class _Created(Protocol):
    @property
    def created_at(self) -> datetime: ...
    @property
    def id(self) -> uuid.UUID: ...


def decode_created_after(cursor: str | None) -> CreatedAfter | None:
    """The position in a `(created_at, id)` cursor; a 422 naming `cursor` if malformed."""
    position = decode_position(cursor, created_at=datetime.fromisoformat, id=uuid.UUID)
    return CreatedAfter(position["created_at"], position["id"]) if position else None


def encode_created_after(item: _Created) -> str:
    """The cursor that continues a `(created_at, id)` list after `item`."""
    return encode_cursor({"created_at": item.created_at.isoformat(), "id": str(item.id)})


def page_of(
    rows: Sequence[R], limit: int, to_item: Callable[[R], T], cursor_after: Callable[[R], str]
) -> Page[T]:
    """A page from `limit + 1` fetched rows: the extra row only says there is more."""
    shown = rows[:limit]
    more = len(rows) > limit and bool(shown)
    return Page(
        items=[to_item(r) for r in shown], next_cursor=cursor_after(shown[-1]) if more else None
    )
