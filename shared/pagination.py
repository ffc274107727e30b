"""Cursor pagination: `{"items": [...], "next_cursor": "..." | null}` on every list."""

import base64
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from shared.errors import FieldError, InvalidInput

T = TypeVar("T")

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


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page")]
