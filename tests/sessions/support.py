"""Helpers of the sessions tests: availability bodies, member identities, time."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx


def weekdays(start: str, end: str, days: range = range(5)) -> list[dict[str, Any]]:
    """The same window on each of `days` (Monday 0)."""
    return [{"weekday": d, "start": start, "end": end} for d in days]


async def set_availability(
    api: httpx.AsyncClient, key: dict[str, str], external_id: str, body: dict[str, Any]
) -> httpx.Response:
    """PUT a person's availability and insist it worked."""
    response = await api.put(f"/v1/employees/{external_id}/availability", json=body, headers=key)
    assert response.status_code == 200, response.text
    return response


def utc(text: str) -> datetime:
    """An RFC 3339 instant as an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def iso(at: datetime) -> str:
    """An aware datetime as RFC 3339."""
    return at.astimezone(UTC).isoformat()


def soon(minutes: float) -> datetime:
    """Now plus some minutes, to the second."""
    return (datetime.now(UTC) + timedelta(minutes=minutes)).replace(microsecond=0)
