"""Sessions in the database: loading a session with its people and occurrences, the
materialized occurrences with their busy ranges and reminders, conflict lookups, and the
events every change publishes (outbox, same transaction)."""

import bisect
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.sessions.models import Busy, Occurrence, Reminder, Session, SessionParticipant
from shared.db import utcnow
from shared.errors import Conflict, NotFound
from shared.events.sessions import SessionParticipant as ParticipantData
from shared.events.sessions import SessionState
from shared.identity import Caller
from shared.outbox import add_event

SOURCE = "mentorbus/sessions"
EXCLUSION_VIOLATION = "23P01"


@dataclass(frozen=True)
class ConflictAt:
    """An existing occurrence a booking or a move would overlap, and whose time it takes."""

    session_id: uuid.UUID
    occurrence_starts_at: datetime
    starts_at: datetime
    ends_at: datetime
    external_id: str


class SessionConflict(Conflict):
    """409: the time overlaps sessions of a participant; `conflicts` names each one."""

    def __init__(self, conflicts: Sequence[ConflictAt]) -> None:
        sessions = sorted({str(c.session_id) for c in conflicts})
        super().__init__(
            f"overlaps {len(conflicts)} booked occurrence(s) of session(s) {', '.join(sessions)}"
        )
        self.conflicts = list(conflicts)


@dataclass
class SessionView:
    """A session with its participants and occurrences (in start order)."""

    session: Session
    participants: list[SessionParticipant]
    occurrences: list[Occurrence]

    @property
    def external_ids(self) -> list[str]:
        """Everyone listed, active or not."""
        return [p.external_id for p in self.participants]

    @property
    def active_ids(self) -> list[str]:
        """Those whose time the session takes."""
        return [p.external_id for p in self.participants if p.active]

    def occurrence(self, original_starts_at: datetime) -> Occurrence:
        """The occurrence named by its original start, else 404."""
        for o in self.occurrences:
            if o.original_starts_at == original_starts_at:
                return o
        raise NotFound(
            f"session {self.session.id} has no occurrence at {original_starts_at.isoformat()}"
        )


async def load(
    session: AsyncSession, org_id: uuid.UUID, session_id: uuid.UUID, *, lock: bool = False
) -> SessionView | None:
    """A session with its participants and occurrences; `lock` holds the row for a change."""
    query = select(Session).where(Session.id == session_id, Session.org_id == org_id)
    row = await session.scalar(query.with_for_update() if lock else query)
    if row is None:
        return None
    participants = (
        await session.scalars(
            select(SessionParticipant)
            .where(SessionParticipant.session_id == session_id)
            .order_by(SessionParticipant.role, SessionParticipant.external_id)
        )
    ).all()
    occurrences = (
        await session.scalars(
            select(Occurrence)
            .where(Occurrence.session_id == session_id)
            .order_by(Occurrence.original_starts_at)
        )
    ).all()
    return SessionView(row, list(participants), list(occurrences))


async def get_visible(
    session: AsyncSession, caller: Caller, session_id: uuid.UUID, *, lock: bool = False
) -> SessionView:
    """A session the caller may see (a member: one they take part in), else 404."""
    assert caller.org_id is not None
    view = await load(session, caller.org_id, session_id, lock=lock)
    if view is None or (caller.is_member and caller.subject not in view.external_ids):
        raise NotFound(f"session {session_id} not found")
    return view


async def conflicts(
    session: AsyncSession,
    org_id: uuid.UUID,
    external_ids: Sequence[str],
    ranges: Sequence[tuple[datetime, datetime]],
) -> list[ConflictAt]:
    """Booked occurrences of these people overlapping any of the (sorted, disjoint) ranges."""
    if not ranges or not external_ids:
        return []
    rows = await session.execute(
        select(
            Busy.session_id, Busy.external_id, Occurrence.original_starts_at,
            Occurrence.starts_at, Occurrence.ends_at,
        )
        .join(Occurrence, Occurrence.id == Busy.occurrence_id)
        .where(
            Busy.org_id == org_id,
            Busy.external_id.in_(list(external_ids)),
            Busy.during.overlaps(Range(ranges[0][0], ranges[-1][1])),
        )
        .order_by(Occurrence.starts_at, Busy.external_id)
    )  # fmt: skip
    starts = [r[0] for r in ranges]
    found: list[ConflictAt] = []
    for session_id, external_id, original, starts_at, ends_at in rows:
        i = bisect.bisect_left(starts, ends_at) - 1
        if i >= 0 and ranges[i][1] > starts_at:
            found.append(ConflictAt(session_id, original, starts_at, ends_at, external_id))
    return found


async def busy_between(
    session: AsyncSession,
    org_id: uuid.UUID,
    external_ids: Sequence[str],
    start: datetime,
    end: datetime,
) -> list[tuple[datetime, datetime]]:
    """Every booked range of these people overlapping `[start, end)` (for slot search)."""
    rows = await session.execute(
        select(Busy.during).where(
            Busy.org_id == org_id,
            Busy.external_id.in_(list(external_ids)),
            Busy.during.overlaps(Range(start, end)),
        )
    )
    return [(r.lower, r.upper) for (r,) in rows if r.lower is not None and r.upper is not None]


async def take_time(
    session: AsyncSession,
    org_id: uuid.UUID,
    occurrences: Sequence[Occurrence],
    external_ids: Sequence[str],
) -> None:
    """Record the occurrences' time as taken for each person. PostgreSQL's exclusion
    constraint decides between concurrent bookings: the loser gets a 409 naming what won."""
    rows = [
        {
            "occurrence_id": o.id, "session_id": o.session_id, "org_id": org_id,
            "external_id": external_id, "during": Range(o.starts_at, o.ends_at),
        }
        for o in occurrences
        for external_id in external_ids
    ]  # fmt: skip
    if not rows:
        return
    try:
        async with session.begin_nested():
            await session.execute(insert(Busy), rows)
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) != EXCLUSION_VIOLATION:
            raise
        # The savepoint is gone, and the winner has committed (PostgreSQL waited for it):
        # name everything in the way.
        ranges = sorted((o.starts_at, o.ends_at) for o in occurrences)
        raise SessionConflict(await conflicts(session, org_id, external_ids, ranges)) from None


async def free_time(session: AsyncSession, occurrence_ids: Sequence[int]) -> None:
    """Give the occurrences' time back and drop their unsent reminders."""
    if occurrence_ids:
        await session.execute(delete(Busy).where(Busy.occurrence_id.in_(list(occurrence_ids))))
        await drop_reminders(session, occurrence_ids)


async def drop_reminders(session: AsyncSession, occurrence_ids: Sequence[int]) -> None:
    """Forget the occurrences' reminders not sent yet (sent ones stay as the record)."""
    if occurrence_ids:
        await session.execute(
            delete(Reminder).where(
                Reminder.occurrence_id.in_(list(occurrence_ids)), Reminder.sent_at.is_(None)
            )
        )


async def add_occurrences(
    session: AsyncSession, s: Session, starts: Sequence[datetime], duration: timedelta
) -> list[Occurrence]:
    """Materialize occurrences starting at `starts` (their names too) as scheduled."""
    occurrences = [
        Occurrence(
            session_id=s.id, org_id=s.org_id, original_starts_at=at, starts_at=at,
            ends_at=at + duration, status="scheduled",
        )
        for at in starts
    ]  # fmt: skip
    session.add_all(occurrences)
    await session.flush()
    return occurrences


async def plan_reminders(
    session: AsyncSession, occurrences: Sequence[Occurrence], leads: Sequence[int]
) -> None:
    """Durable reminder rows for each occurrence and lead time still ahead."""
    now = utcnow()
    rows = [
        {
            "occurrence_id": o.id, "org_id": o.org_id, "lead_minutes": lead,
            "due_at": o.starts_at - timedelta(minutes=lead),
        }
        for o in occurrences
        for lead in leads
        if o.status == "scheduled" and o.starts_at - timedelta(minutes=lead) > now
    ]  # fmt: skip
    if rows:
        # A reminder already sent for a moved occurrence is not sent again.
        await session.execute(pg_insert(Reminder).on_conflict_do_nothing(), rows)


def session_status(view: SessionView) -> str:
    """A session's status from its occurrences: scheduled while any is ahead, cancelled
    when all were, otherwise completed if any took place, else no_show."""
    statuses = {o.status for o in view.occurrences}
    if view.session.rrule is None and len(view.occurrences) == 1:
        return view.occurrences[0].status
    if "scheduled" in statuses:
        return "scheduled"
    if not statuses or statuses == {"cancelled"}:
        return "cancelled"
    return "completed" if "completed" in statuses else "no_show"


def publish(
    session: AsyncSession,
    event: type[SessionState],
    view: SessionView,
    *,
    occurrence: Occurrence | None = None,
    scope: str | None = None,
    occurrence_starts_at: datetime | None = None,
    reason: str | None = None,
    lead_minutes: int | None = None,
) -> None:
    """Stage a `session.*` event with the session's full state (and, for an event about
    one occurrence, that occurrence's time and status) in the caller's transaction."""
    s = view.session
    values = {
        "session_id": s.id,
        "version": s.version,
        "match_id": s.match_id,
        "group_id": s.group_id,
        "program_id": s.program_id,
        "starts_at": occurrence.starts_at if occurrence else s.starts_at,
        "duration_minutes": (
            int((occurrence.ends_at - occurrence.starts_at).total_seconds() // 60)
            if occurrence
            else s.duration_minutes
        ),
        "rrule": s.rrule,
        "title": s.title,
        "status": occurrence.status if occurrence else s.status,
        "participants": [
            ParticipantData(person_id=p.person_id, external_id=p.external_id, role=p.role)
            for p in view.participants
            if p.active
        ],
        "occurrence_starts_at": (
            occurrence.original_starts_at if occurrence else occurrence_starts_at
        ),
        "reason": reason,
        "scope": scope or ("occurrence" if occurrence else "session"),
        "time_zone": s.time_zone,
    }
    if lead_minutes is not None:
        values["lead_minutes"] = lead_minutes
    add_event(session, event.model_validate(values), source=SOURCE, orgid=s.org_id)


def touch(view: SessionView) -> None:
    """Record a change: new version (also the calendar's SEQUENCE) and derived status."""
    view.session.version += 1
    view.session.status = session_status(view)
    view.session.updated_at = utcnow()
