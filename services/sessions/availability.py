"""Availability: weekly windows in a person's own zone plus date exceptions. Overlapping
windows are refused (422 naming the later one), never merged silently: an overlap usually
means a typo the person should see."""

import itertools
import uuid
from collections import defaultdict
from datetime import date, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.sessions.models import Availability
from services.sessions.people import get_person
from services.sessions.schemas import AvailabilityIn
from services.sessions.slots import DateException, WeeklyAvailability, Window
from shared.errors import FieldError, InvalidInput, NotFound


def valid_zone(name: str | None) -> bool:
    """Whether `name` is an IANA zone this machine knows."""
    if not name or name.startswith("/") or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _hhmm(at: time) -> str:
    return at.strftime("%H:%M")


def _overlaps(windows: list[tuple[str, time, time]], errors: list[FieldError]) -> None:
    ordered = sorted(windows, key=lambda w: (w[1], w[2]))
    for (earlier, _, end), (later, start, _) in itertools.pairwise(ordered):
        if start < end:
            errors.append(FieldError(later, f"overlaps {earlier}; merge them into one window"))


def validate(body: AvailabilityIn, fallback_zone: str | None) -> tuple[str, list[FieldError]]:
    """The zone to use and every rule the input breaks (end before start, overlaps, zone)."""
    errors: list[FieldError] = []
    zone = body.time_zone or fallback_zone
    if not valid_zone(zone):
        field = "time_zone"
        message = (
            f"unknown IANA time zone '{body.time_zone}'"
            if body.time_zone
            else "required: the person has no time zone on record"
        )
        errors.append(FieldError(field, message))
    by_day: dict[int, list[tuple[str, time, time]]] = defaultdict(list)
    for i, w in enumerate(body.weekly):
        if w.end <= w.start:
            errors.append(FieldError(f"weekly.{i}.end", "must be after start"))
        else:
            by_day[w.weekday].append((f"weekly.{i}", w.start, w.end))
    by_date: dict[date, list[tuple[str, time, time]]] = defaultdict(list)
    blocked_by_date: dict[date, list[tuple[str, time, time]]] = defaultdict(list)
    for i, e in enumerate(body.exceptions):
        if e.available and (e.start is None or e.end is None):
            for name in ("start", "end"):
                if getattr(e, name) is None:
                    errors.append(FieldError(f"exceptions.{i}.{name}", "required when available"))
            continue
        if (e.start is None) != (e.end is None):
            name = "end" if e.end is None else "start"
            errors.append(
                FieldError(f"exceptions.{i}.{name}", "give both start and end, or neither")
            )
            continue
        if e.start is not None and e.end is not None:
            if e.end <= e.start:
                errors.append(FieldError(f"exceptions.{i}.end", "must be after start"))
                continue
            target = by_date if e.available else blocked_by_date
            target[e.date].append((f"exceptions.{i}", e.start, e.end))
    for windows in [*by_day.values(), *by_date.values(), *blocked_by_date.values()]:
        _overlaps(windows, errors)
    return zone or "", errors


def _stored(body: AvailabilityIn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    weekly = [
        {"weekday": w.weekday, "start": _hhmm(w.start), "end": _hhmm(w.end)}
        for w in sorted(body.weekly, key=lambda w: (w.weekday, w.start))
    ]
    exceptions = [
        {
            "date": e.date.isoformat(),
            "available": e.available,
            "start": _hhmm(e.start) if e.start else None,
            "end": _hhmm(e.end) if e.end else None,
        }
        for e in sorted(body.exceptions, key=lambda e: (e.date, e.start or time.min))
    ]
    return weekly, exceptions


async def put_availability(
    session: AsyncSession, org_id: uuid.UUID, external_id: str, body: AvailabilityIn
) -> Availability:
    """Replace a person's availability (422 naming each bad field)."""
    person = await get_person(session, org_id, external_id)
    zone, errors = validate(body, person.time_zone)
    if errors:
        raise InvalidInput(errors)
    weekly, exceptions = _stored(body)
    row = await session.get(Availability, (org_id, external_id), with_for_update=True)
    if row is None:
        row = Availability(
            org_id=org_id, external_id=external_id, time_zone=zone, weekly=weekly,
            exceptions=exceptions, version=1,
        )  # fmt: skip
        session.add(row)
    else:
        row.time_zone, row.weekly, row.exceptions = zone, weekly, exceptions
        row.version += 1
    await session.flush()
    return row


async def get_availability(
    session: AsyncSession, org_id: uuid.UUID, external_id: str
) -> Availability:
    """A person's availability; 404 if they never set one."""
    await get_person(session, org_id, external_id)
    row = await session.get(Availability, (org_id, external_id))
    if row is None:
        raise NotFound(f"employee {external_id} has no availability yet")
    return row


async def load(
    session: AsyncSession, org_id: uuid.UUID, external_ids: list[str]
) -> dict[str, WeeklyAvailability]:
    """The availability of several people, ready for slot search."""
    rows = await session.scalars(
        select(Availability).where(
            Availability.org_id == org_id, Availability.external_id.in_(external_ids)
        )
    )
    return {row.external_id: to_weekly(row) for row in rows}


def to_weekly(row: Availability) -> WeeklyAvailability:
    """A stored availability as the slot search reads it."""
    weekly: dict[int, list[Window]] = defaultdict(list)
    for w in row.weekly:
        weekly[int(w["weekday"])].append(
            Window(time.fromisoformat(w["start"]), time.fromisoformat(w["end"]))
        )
    exceptions = tuple(
        DateException(
            day=date.fromisoformat(e["date"]),
            available=bool(e["available"]),
            start=time.fromisoformat(e["start"]) if e.get("start") else None,
            end=time.fromisoformat(e["end"]) if e.get("end") else None,
        )
        for e in row.exceptions
    )
    return WeeklyAvailability(
        time_zone=row.time_zone,
        weekly={day: tuple(ws) for day, ws in weekly.items()},
        exceptions=exceptions,
    )
