"""Helpers of the profiles tests: outbox reads and common fixtures' data."""

import json
import uuid
from typing import Any

import asyncpg


async def outbox_events(
    conn: asyncpg.Connection, key: str, event_type: str | None = None
) -> list[dict[str, Any]]:
    """The CloudEvents staged in the profiles outbox for an aggregate, oldest first."""
    rows = await conn.fetch(
        "SELECT event_type, payload FROM outbox_message WHERE key = $1 ORDER BY id", key
    )
    return [
        json.loads(r["payload"])
        for r in rows
        if event_type is None or r["event_type"] == event_type
    ]


def unique(prefix: str) -> str:
    """A value no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
