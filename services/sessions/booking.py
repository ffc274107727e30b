"""Booking use cases: book (one-off or a series), reschedule, cancel, complete, no-show.

Occurrences are rows; each one's time is recorded per participant in `busy`, where an
exclusion constraint makes PostgreSQL refuse overlaps, so two concurrent bookings of the
same time cannot both commit. Every change raises the session's version (the calendar's
SEQUENCE) and stages its `session.*` event in the same transaction.
"""

import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.sessions import recurrence, store
from services.sessions.availability import valid_zone
from services.sessions.models import (
    Availability,
    Occurrence,
    PersonProjection,
    Session,
    SessionParticipant,
)
from services.sessions.people import Party, group_party, match_party, org_of, require_active
from services.sessions.schemas import CancelIn, OccurrenceIn, SessionIn, SessionPatch
from services.sessions.store import SessionView, publish, touch
from shared.db import utcnow
from shared.errors import Conflict, FieldError, InvalidInput
from shared.events.sessions import (
    SessionCancelledV1,
    SessionCompletedV1,
    SessionNoShowV1,
    SessionRescheduledV1,
    SessionScheduledV1,
)
from shared.identity import Caller
from shared.pagination import CreatedAfter


@dataclass(frozen=True)
class Limits:
    """How far series reach and when reminders go out (from settings)."""

    horizon_days: int = 366
    max_occurrences: int = 400
    reminder_leads: tuple[int, ...] = (1440, 60)


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput([FieldError(field, message)])


def plan(
    starts_at: datetime,
    rule: str | None,
    time_zone: str,
    duration: timedelta,
    limits: Limits,
) -> tuple[str | None, list[datetime]]:
    """The stored rule and the occurrence starts (UTC) of a session, or a 422 on `rrule`."""
    if rule is None:
        return None, [starts_at.astimezone(UTC)]
    horizon_end = max(utcnow(), starts_at) + timedelta(days=limits.horizon_days)
    try:
        text = recurrence.normalize(rule, horizon_end)
        starts = recurrence.expand(text, starts_at, time_zone, limits.max_occurrences)
    except recurrence.RuleError as exc:
        raise _invalid("rrule", str(exc)) from None
    if not starts:
        raise _invalid("rrule", "the rule yields no occurrence")
    if len(starts) > limits.max_occurrences:
        raise _invalid("rrule", f"a series has at most {limits.max_occurrences} occurrences")
    if starts[-1] > horizon_end:
        raise _invalid(
            "rrule",
            f"a series may reach at most {limits.horizon_days} days ahead; book the rest later",
        )
    if any(b - a < duration for a, b in itertools.pairwise(starts)):
        raise _invalid("rrule", "occurrences would overlap each other")
    return text, starts


async def _default_zone(session: AsyncSession, org_id: uuid.UUID, external_id: str | None) -> str:
    # The mentor's availability zone, else their HRIS zone: where the series is "at 17:00".
    if external_id is None:
        return "UTC"
    zone = await session.scalar(
        select(func.coalesce(Availability.time_zone, PersonProjection.time_zone))
        .select_from(PersonProjection)
        .outerjoin(
            Availability,
            (Availability.org_id == PersonProjection.org_id)
            & (Availability.external_id == PersonProjection.external_id),
        )
        .where(PersonProjection.org_id == org_id, PersonProjection.external_id == external_id)
    )
    return zone if zone and valid_zone(zone) else "UTC"


async def _party(session: AsyncSession, caller: Caller, body: SessionIn) -> Party:
    if (body.match_id is None) == (body.group_id is None):
        raise _invalid("match_id", "give exactly one of match_id and group_id")
    if body.match_id is not None:
        return await match_party(session, caller, body.match_id, want_active=True)
    assert body.group_id is not None
    return await group_party(session, caller, body.group_id, want_active=True)


async def book(
    session: AsyncSession, caller: Caller, body: SessionIn, limits: Limits
) -> SessionView:
    """Book a session or series for an active match or circle; 409 naming every
    conflicting occurrence when any participant is already booked then."""
    org_id = org_of(caller)
    party = await _party(session, caller, body)
    require_active(party)
    zone = body.time_zone or await _default_zone(session, org_id, party.mentor)
    if not valid_zone(zone):
        raise _invalid("time_zone", f"unknown IANA time zone '{zone}'")
    duration = timedelta(minutes=body.duration_minutes)
    rule, starts = plan(body.starts_at, body.rrule, zone, duration, limits)
    s = Session(
        id=uuid.uuid4(), org_id=org_id, match_id=party.match_id, group_id=party.group_id,
        program_id=party.program_id, starts_at=starts[0], duration_minutes=body.duration_minutes,
        time_zone=zone, rrule=rule, title=body.title, agenda=body.agenda, location=body.location,
        video_url=body.video_url, status="scheduled", version=1,
    )  # fmt: skip
    participants = [
        SessionParticipant(
            session_id=s.id, org_id=org_id, external_id=p.external_id, person_id=p.person_id,
            role=p.role, active=True,
        )
        for p in party.participants
    ]  # fmt: skip
    session.add(s)
    # No ORM relationships: flush the session before its occurrences reference it.
    await session.flush()
    session.add_all(participants)
    occurrences = await store.add_occurrences(session, s, starts, duration)
    await store.take_time(session, org_id, occurrences, party.external_ids)
    await store.plan_reminders(session, occurrences, limits.reminder_leads)
    view = SessionView(s, participants, occurrences)
    publish(session, SessionScheduledV1, view)
    return view


def _details(body: SessionPatch) -> dict[str, str | None]:
    return {
        name: getattr(body, name)
        for name in ("title", "agenda", "location", "video_url")
        if name in body.model_fields_set
    }


async def _move(
    session: AsyncSession,
    view: SessionView,
    occurrence: Occurrence,
    starts_at: datetime,
    duration: timedelta,
    limits: Limits,
) -> None:
    if occurrence.status != "scheduled":
        raise Conflict(f"the occurrence is {occurrence.status}; only a scheduled one moves")
    await store.free_time(session, [occurrence.id])
    occurrence.starts_at = starts_at.astimezone(UTC)
    occurrence.ends_at = occurrence.starts_at + duration
    occurrence.version += 1
    await session.flush()
    await store.take_time(session, view.session.org_id, [occurrence], view.active_ids)
    await store.plan_reminders(session, [occurrence], limits.reminder_leads)


async def reschedule(
    session: AsyncSession, caller: Caller, session_id: uuid.UUID, body: SessionPatch, limits: Limits
) -> SessionView:
    """Move or edit a session; for a series, one occurrence or this-and-following (the
    answer is then the new series split off at that occurrence)."""
    view = await store.get_visible(session, caller, session_id, lock=True)
    s = view.session
    moves = body.starts_at is not None or body.duration_minutes is not None
    details = _details(body)
    if s.rrule is None:
        if moves:
            occurrence = view.occurrences[0]
            duration = timedelta(minutes=body.duration_minutes or s.duration_minutes)
            await _move(
                session, view, occurrence, body.starts_at or occurrence.starts_at, duration, limits
            )
            s.starts_at, s.duration_minutes = (
                occurrence.starts_at,
                body.duration_minutes or s.duration_minutes,
            )
        for name, value in details.items():
            setattr(s, name, value)
        touch(view)
        publish(session, SessionRescheduledV1, view)
        return view
    if body.occurrence_starts_at is None:
        if moves:
            raise _invalid(
                "occurrence_starts_at",
                "name the occurrence to move (scope following from the first moves the series)",
            )
        for name, value in details.items():
            setattr(s, name, value)
        touch(view)
        publish(session, SessionRescheduledV1, view)
        return view
    occurrence = view.occurrence(body.occurrence_starts_at)
    if body.scope == "occurrence":
        if details:
            raise _invalid(next(iter(details)), "applies to the series: use scope following")
        if moves:
            duration = (
                timedelta(minutes=body.duration_minutes)
                if body.duration_minutes
                else occurrence.ends_at - occurrence.starts_at
            )
            await _move(
                session, view, occurrence, body.starts_at or occurrence.starts_at, duration, limits
            )
        touch(view)
        publish(session, SessionRescheduledV1, view, occurrence=occurrence)
        return view
    return await _split(session, view, occurrence, body, limits)


async def _split(
    session: AsyncSession,
    view: SessionView,
    at: Occurrence,
    body: SessionPatch,
    limits: Limits,
) -> SessionView:
    s = view.session
    assert s.rrule is not None
    later = sorted(
        (o for o in view.occurrences if o.original_starts_at >= at.original_starts_at),
        key=lambda o: o.original_starts_at,
    )
    earlier = [o for o in view.occurrences if o.original_starts_at < at.original_starts_at]
    if any(o.status in ("completed", "no_show") for o in later):
        raise Conflict("occurrences from there on already took place; change later ones")
    remaining = len(later)
    new_start = body.starts_at or at.original_starts_at
    minutes = body.duration_minutes or s.duration_minutes
    rule, starts = plan(
        new_start, recurrence.continued(s.rrule, remaining), s.time_zone,
        timedelta(minutes=minutes), limits,
    )  # fmt: skip
    await store.free_time(session, [o.id for o in later])
    await session.execute(delete(Occurrence).where(Occurrence.id.in_([o.id for o in later])))
    details = {
        "title": s.title, "agenda": s.agenda, "location": s.location, "video_url": s.video_url,
        **_details(body),
    }  # fmt: skip
    if not earlier:
        # From the first occurrence: the whole series changes, under the same id.
        s.starts_at, s.duration_minutes, s.rrule = starts[0], minutes, rule
        for name, value in details.items():
            setattr(s, name, value)
        occurrences = await store.add_occurrences(session, s, starts, timedelta(minutes=minutes))
        scheduled = _keep_cancellations(later, occurrences)
        await store.take_time(session, s.org_id, scheduled, view.active_ids)
        await store.plan_reminders(session, scheduled, limits.reminder_leads)
        view.occurrences = occurrences
        touch(view)
        publish(session, SessionRescheduledV1, view, scope="session")
        return view
    s.rrule = recurrence.until_before(s.rrule, at.original_starts_at)
    view.occurrences = earlier
    touch(view)
    publish(
        session, SessionRescheduledV1, view, scope="following",
        occurrence_starts_at=at.original_starts_at,
    )  # fmt: skip
    new = Session(
        id=uuid.uuid4(), org_id=s.org_id, match_id=s.match_id, group_id=s.group_id,
        program_id=s.program_id, starts_at=starts[0], duration_minutes=minutes,
        time_zone=s.time_zone, rrule=rule, status="scheduled", version=1, split_from=s.id,
        **details,
    )  # fmt: skip
    participants = [
        SessionParticipant(
            session_id=new.id, org_id=s.org_id, external_id=p.external_id, person_id=p.person_id,
            role=p.role, active=True,
        )
        for p in view.participants
        if p.active
    ]  # fmt: skip
    session.add(new)
    await session.flush()
    session.add_all(participants)
    occurrences = await store.add_occurrences(session, new, starts, timedelta(minutes=minutes))
    scheduled = _keep_cancellations(later, occurrences)
    await store.take_time(session, s.org_id, scheduled, [p.external_id for p in participants])
    await store.plan_reminders(session, scheduled, limits.reminder_leads)
    split = SessionView(new, participants, occurrences)
    publish(session, SessionScheduledV1, split)
    return split


def _keep_cancellations(
    replaced: Sequence[Occurrence], occurrences: Sequence[Occurrence]
) -> list[Occurrence]:
    """Carry single-occurrence cancellations over a this-and-following change: the n-th
    replaced occurrence becomes the n-th new one (a COUNT rule continues with the same
    count; an UNTIL rule is matched by position), so a cancelled one stays cancelled, as
    in Outlook and Google Calendar. The answer is the new occurrences still scheduled
    (only those take time and get reminders)."""
    for old, new in zip(replaced, occurrences, strict=False):
        if old.status == "cancelled":
            new.status, new.reason = "cancelled", old.reason
    return [o for o in occurrences if o.status == "scheduled"]


def _cancel_occurrences(occurrences: Sequence[Occurrence], reason: str | None) -> None:
    for o in occurrences:
        o.status, o.reason = "cancelled", reason
        o.version += 1


async def cancel(
    session: AsyncSession, caller: Caller, session_id: uuid.UUID, body: CancelIn
) -> SessionView:
    """Cancel a session (every scheduled occurrence), one occurrence, or this and the
    following ones; completed occurrences stay."""
    view = await store.get_visible(session, caller, session_id, lock=True)
    occurrence: Occurrence | None = None
    if body.occurrence_starts_at is None:
        scope = "session"
        targets = [o for o in view.occurrences if o.status == "scheduled"]
    else:
        occurrence = view.occurrence(body.occurrence_starts_at)
        scope = body.scope
        targets = (
            [occurrence]
            if scope == "occurrence"
            else [
                o
                for o in view.occurrences
                if o.original_starts_at >= occurrence.original_starts_at and o.status == "scheduled"
            ]
        )
    if not targets or any(o.status != "scheduled" for o in targets):
        raise Conflict("nothing scheduled to cancel there")
    _cancel_occurrences(targets, body.reason)
    await store.free_time(session, [o.id for o in targets])
    if scope == "session":
        view.session.reason = body.reason
    touch(view)
    publish(
        session, SessionCancelledV1, view,
        occurrence=occurrence if scope == "occurrence" else None, scope=scope,
        occurrence_starts_at=occurrence.original_starts_at if occurrence else None,
        reason=body.reason,
    )  # fmt: skip
    return view


async def mark(
    session: AsyncSession, caller: Caller, session_id: uuid.UUID, body: OccurrenceIn, status: str
) -> SessionView:
    """Record that a scheduled occurrence took place (`completed`) or was missed
    (`no_show`); a series needs `occurrence_starts_at`."""
    view = await store.get_visible(session, caller, session_id, lock=True)
    if body.occurrence_starts_at is not None:
        occurrence = view.occurrence(body.occurrence_starts_at)
    elif len(view.occurrences) == 1:
        occurrence = view.occurrences[0]
    else:
        raise _invalid("occurrence_starts_at", "required for a series: which occurrence")
    if occurrence.status != "scheduled":
        raise Conflict(f"the occurrence is already {occurrence.status}")
    occurrence.status, occurrence.reason = status, body.reason
    occurrence.version += 1
    await store.drop_reminders(session, [occurrence.id])
    touch(view)
    event = SessionCompletedV1 if status == "completed" else SessionNoShowV1
    publish(session, event, view, occurrence=occurrence, reason=body.reason)
    return view


@dataclass(frozen=True)
class SessionFilter:
    """What a session list is narrowed to."""

    match_id: uuid.UUID | None = None
    group_id: uuid.UUID | None = None
    employee_external_id: str | None = None
    status: str | None = None


async def list_sessions(
    session: AsyncSession,
    caller: Caller,
    where: SessionFilter,
    after: CreatedAfter | None,
    limit: int,
) -> list[SessionView]:
    """Sessions oldest first; a member sees only those they take part in."""
    org_id = org_of(caller)
    query = select(Session).where(Session.org_id == org_id)
    people = [
        p for p in (where.employee_external_id, caller.subject if caller.is_member else None) if p
    ]
    for person in people:
        query = query.where(
            exists().where(
                SessionParticipant.session_id == Session.id,
                SessionParticipant.external_id == person,
            )
        )
    if where.match_id is not None:
        query = query.where(Session.match_id == where.match_id)
    if where.group_id is not None:
        query = query.where(Session.group_id == where.group_id)
    if where.status is not None:
        query = query.where(Session.status == where.status)
    if after is not None:
        query = query.where(
            (Session.created_at > after.created_at)
            | ((Session.created_at == after.created_at) & (Session.id > after.id))
        )
    rows = (
        await session.scalars(query.order_by(Session.created_at, Session.id).limit(limit))
    ).all()
    views = []
    for row in rows:
        view = await store.load(session, org_id, row.id)
        if view is not None:
            views.append(view)
    return views
