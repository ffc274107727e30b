"""Calendars: a person's sessions as iCalendar (RFC 5545, built with `icalendar`), and
the secret, revocable feed links calendar apps subscribe to without a header.

Each session is one VEVENT with a stable UID (`<session id>@mentorbus`); a series carries
its RRULE, cancelled occurrences as EXDATE and moved ones as overrides (RECURRENCE-ID).
SEQUENCE is the session's version, raised on every change, so apps take the update.
"""

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vRecur
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.sessions import store
from services.sessions.models import CalendarFeed, Session, SessionParticipant
from services.sessions.people import get_person
from services.sessions.store import SessionView
from shared.db import utcnow
from shared.errors import NotFound

PRODID = "-//Mentorbus//sessions//EN"


def uid(session_id: uuid.UUID) -> str:
    """The stable calendar UID of a session."""
    return f"{session_id}@mentorbus"


def _event(view: SessionView, stamp: datetime, cancelled: bool) -> Event:
    s = view.session
    zone = ZoneInfo(s.time_zone)
    event = Event()
    event.add("uid", uid(s.id))
    event.add("dtstamp", stamp)
    event.add("dtstart", s.starts_at.astimezone(zone))
    event.add("duration", timedelta(minutes=s.duration_minutes))
    event.add("sequence", s.version)
    event.add("summary", s.title or "Mentoring session")
    if s.agenda:
        event.add("description", s.agenda)
    if s.location or s.video_url:
        event.add("location", s.location or s.video_url)
    if s.video_url:
        event.add("url", s.video_url)
    event.add("status", "CANCELLED" if cancelled or s.status == "cancelled" else "CONFIRMED")
    return event


def _components(view: SessionView, stamp: datetime, left: bool) -> list[Event]:
    s = view.session
    if s.rrule is None:
        return [_event(view, stamp, left)]
    zone = ZoneInfo(s.time_zone)
    master = _event(view, stamp, left)
    master.add("rrule", vRecur.from_ical(s.rrule))
    excluded = [
        o.original_starts_at.astimezone(zone) for o in view.occurrences if o.status == "cancelled"
    ]
    if excluded:
        master.add("exdate", excluded)
    events = [master]
    duration = timedelta(minutes=s.duration_minutes)
    for o in view.occurrences:
        if o.status == "cancelled" or (
            o.starts_at == o.original_starts_at and o.ends_at - o.starts_at == duration
        ):
            continue
        moved = Event()
        moved.add("uid", uid(s.id))
        moved.add("dtstamp", stamp)
        moved.add("recurrence-id", o.original_starts_at.astimezone(zone))
        moved.add("dtstart", o.starts_at.astimezone(zone))
        moved.add("duration", o.ends_at - o.starts_at)
        moved.add("sequence", s.version)
        moved.add("summary", s.title or "Mentoring session")
        moved.add("status", "CANCELLED" if left else "CONFIRMED")
        events.append(moved)
    return events


def render(views: list[tuple[SessionView, bool]], name: str) -> bytes:
    """An iCalendar document of the sessions (each with whether the person left it)."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    stamp = utcnow().replace(microsecond=0)
    for view, left in views:
        for component in _components(view, stamp, left):
            calendar.add_component(component)
    calendar.add_missing_timezones()
    return bytes(calendar.to_ical())


async def person_calendar(session: AsyncSession, org_id: uuid.UUID, external_id: str) -> bytes:
    """Every session the person takes (or took) part in, as iCalendar."""
    person = await get_person(session, org_id, external_id)
    rows = await session.execute(
        select(Session.id, SessionParticipant.active)
        .join(SessionParticipant, SessionParticipant.session_id == Session.id)
        .where(Session.org_id == org_id, SessionParticipant.external_id == external_id)
        .order_by(Session.starts_at, Session.id)
    )
    views: list[tuple[SessionView, bool]] = []
    for session_id, active in rows.all():
        view = await store.load(session, org_id, session_id)
        if view is not None:
            views.append((view, not active))
    return render(views, f"Mentoring: {person.display_name or external_id}")


def _hash(token: str) -> bytes:
    # 256 random bits: SHA-256 suffices (not a guessable password).
    return hashlib.sha256(token.encode()).digest()


async def create_feed(
    session: AsyncSession, org_id: uuid.UUID, external_id: str, base_url: str
) -> str:
    """A new secret feed URL for the person; any earlier link stops working."""
    await get_person(session, org_id, external_id)
    await revoke_feeds(session, org_id, external_id)
    token = secrets.token_urlsafe(32)
    session.add(CalendarFeed(token_hash=_hash(token), org_id=org_id, external_id=external_id))
    await session.flush()
    return f"{base_url}/v1/calendar-feeds/{token}.ics"


async def revoke_feeds(session: AsyncSession, org_id: uuid.UUID, external_id: str) -> int:
    """Revoke the person's feed links; returns how many were live."""
    result = await session.execute(
        update(CalendarFeed)
        .where(
            CalendarFeed.org_id == org_id,
            CalendarFeed.external_id == external_id,
            CalendarFeed.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def feed_calendar(session: AsyncSession, token: str) -> bytes:
    """The calendar behind a live secret link, else 404 (revoked and unknown alike)."""
    feed = await session.scalar(
        select(CalendarFeed).where(
            CalendarFeed.token_hash == _hash(token.removesuffix(".ics")),
            CalendarFeed.revoked_at.is_(None),
        )
    )
    if feed is None:
        raise NotFound("no such calendar feed")
    return await person_calendar(session, feed.org_id, feed.external_id)
