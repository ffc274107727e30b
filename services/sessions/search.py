"""Slot search: the free time common to a match's or circle's people, each in their zone."""

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.sessions import availability, store
from services.sessions.people import Party
from services.sessions.slots import Interval, common_slots
from shared.errors import FieldError, InvalidInput


def check_range(start: datetime, end: datetime, max_days: int) -> None:
    """`from` before `to`, and no longer apart than the documented maximum (422 otherwise)."""
    if end <= start:
        raise InvalidInput([FieldError("to", "must be after from")])
    if end - start > timedelta(days=max_days):
        raise InvalidInput([FieldError("to", f"the range may span at most {max_days} days")])


async def find_slots(
    session: AsyncSession,
    org_id: uuid.UUID,
    party: Party,
    start: datetime,
    end: datetime,
    duration: timedelta,
    step: timedelta,
) -> list[Interval]:
    """Slots of exactly `duration` in `[start, end)` free for every participant: inside
    each one's availability (someone with none set has no free time), outside every
    session any of them booked in any match."""
    ids = party.external_ids
    known = await availability.load(session, org_id, ids)
    busy = await store.busy_between(session, org_id, ids, start, end)
    return common_slots([known.get(i) for i in ids], busy, start, end, duration, step)
