"""`GET /asyncapi.json`: the event catalogue (AsyncAPI 3), public like `/openapi.json`."""

import functools
from typing import Any

from fastapi import APIRouter

from shared.events.asyncapi import asyncapi_document

router = APIRouter()


@functools.cache
def _document() -> dict[str, Any]:
    return asyncapi_document()


@router.get("/asyncapi.json", include_in_schema=False)
async def asyncapi() -> dict[str, Any]:
    """Every topic and event type with its schema, generated from `shared/events`."""
    return _document()
