"""Learning tracks: definitions per program (versioned), a match's assigned track and its
step progress. No HTTP and no Kafka here.

A track's modules change only by making a new version (kept in `track_version`), so a
match keeps the version it started on. A step is done once every role it names (mentee,
mentor, or both) completed it; completing is idempotent."""

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback import agreements
from services.feedback.models import (
    MatchProjection,
    MatchTrack,
    StepCompletion,
    Track,
    TrackVersion,
)
from services.feedback.participants import acting_participant
from services.feedback.projections import existing_program, visible_match
from services.feedback.risk import Reason, RiskContext, risk_rule
from services.feedback.schemas_tracks import ModuleIn, TrackCopyIn, TrackIn, TrackPatch
from shared.db import utcnow
from shared.errors import Conflict, Forbidden, NotFound
from shared.events import TrackAssignedV1, TrackCompletedV1, TrackStepCompletedV1
from shared.events.matches import MatchState
from shared.identity import Caller
from shared.outbox import add_event
from shared.pagination import CreatedAfter

SOURCE = "mentorbus/feedback"
ACTIVE_STATUSES = ("active", "completed", "ended")
ROLES_OF = {"mentee": ("mentee",), "mentor": ("mentor",), "both": ("mentee", "mentor")}


def _step(kind: str, title: str, due_day: int, completed_by: str, **more: Any) -> dict[str, Any]:
    return {"kind": kind, "title": title, "due_day": due_day, "completed_by": completed_by, **more}


# Built-in starting points a program admin copies and adapts.
TEMPLATES: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "leadership": (
        "Leadership",
        [
            {
                "title": "Foundations",
                "steps": [
                    _step("discussion", "What kind of leader do you want to be?", 7, "both"),
                    _step("task", "Write a one-page leadership goal", 14, "mentee"),
                ],
            },
            {
                "title": "Practice",
                "steps": [
                    _step("task", "Lead a meeting and ask for feedback", 45, "mentee"),
                    _step("check_in", "Review the feedback together", 60, "both"),
                ],
            },
        ],
    ),
    "onboarding": (
        "Onboarding",
        [
            {
                "title": "First weeks",
                "steps": [
                    _step("check_in", "Welcome conversation", 3, "both"),
                    _step("task", "Map the people you will work with", 14, "mentee"),
                    _step("check_in", "30-day check-in", 30, "both"),
                ],
            },
        ],
    ),
    "reverse_mentoring": (
        "Reverse mentoring",
        [
            {
                "title": "Exchange",
                "steps": [
                    _step("discussion", "What the senior partner wants to learn", 7, "both"),
                    _step("task", "Show a tool or habit you rely on", 21, "mentor"),
                    _step("check_in", "What changed for each of you", 45, "both"),
                ],
            },
        ],
    ),
}


def _with_step_ids(modules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Modules as stored: every step with an id (new steps get a fresh one)."""
    return [
        {
            "title": m["title"],
            "steps": [{**s, "id": s.get("id") or uuid.uuid4().hex[:12]} for s in m["steps"]],
        }
        for m in modules
    ]


def _dump_modules(modules: list[ModuleIn]) -> list[dict[str, Any]]:
    return _with_step_ids([m.model_dump() for m in modules])


async def _clear_default(session: AsyncSession, program_id: uuid.UUID, keep: uuid.UUID) -> None:
    await session.execute(
        update(Track)
        .where(Track.program_id == program_id, Track.id != keep, Track.is_default)
        .values(is_default=False)
    )


async def _add_track(
    session: AsyncSession,
    org_id: uuid.UUID,
    program_id: uuid.UUID,
    name: str,
    modules: list[dict[str, Any]],
    is_default: bool,
) -> Track:
    track = Track(
        id=uuid.uuid4(),
        org_id=org_id,
        program_id=program_id,
        name=name,
        is_default=is_default,
        version=1,
        modules=modules,
    )
    session.add(track)
    session.add(TrackVersion(track_id=track.id, version=1, modules=modules))
    await session.flush()
    if is_default:
        await _clear_default(session, program_id, track.id)
    return track


async def create_track(
    session: AsyncSession, org_id: uuid.UUID, program_id: uuid.UUID, body: TrackIn
) -> Track:
    """A new track in a program, from modules or a built-in template."""
    await existing_program(session, org_id, program_id)
    if body.template is not None:
        name, raw = TEMPLATES[body.template]
        modules = _with_step_ids(raw)
    else:
        name, modules = "", _dump_modules(body.modules or [])
    return await _add_track(
        session, org_id, program_id, body.name or name, modules, body.is_default
    )


async def list_tracks(
    session: AsyncSession,
    org_id: uuid.UUID,
    program_id: uuid.UUID,
    after: CreatedAfter | None,
    limit: int,
) -> list[Track]:
    """A program's tracks, oldest first."""
    await existing_program(session, org_id, program_id)
    query = select(Track).where(Track.org_id == org_id, Track.program_id == program_id)
    if after is not None:
        query = query.where(tuple_(Track.created_at, Track.id) > tuple_(after.created_at, after.id))
    query = query.order_by(Track.created_at, Track.id).limit(limit)
    return list((await session.scalars(query)).all())


async def get_track(
    session: AsyncSession, org_id: uuid.UUID, track_id: uuid.UUID, *, for_update: bool = False
) -> Track:
    """A track of the organization; another organization's is not found."""
    query = select(Track).where(Track.id == track_id, Track.org_id == org_id)
    track = await session.scalar(query.with_for_update() if for_update else query)
    if track is None:
        raise NotFound(f"track {track_id} not found")
    return track


async def edit_track(
    session: AsyncSession, org_id: uuid.UUID, track_id: uuid.UUID, body: TrackPatch
) -> Track:
    """Rename, (un)make default, or change modules: changed modules are a new version;
    matches already on the track keep the version they started on."""
    track = await get_track(session, org_id, track_id, for_update=True)
    if body.name is not None:
        track.name = body.name
    if body.modules is not None:
        modules = _dump_modules(body.modules)
        if modules != track.modules:
            track.version += 1
            track.modules = modules
            session.add(TrackVersion(track_id=track.id, version=track.version, modules=modules))
    if body.is_default is not None:
        track.is_default = body.is_default
        if body.is_default:
            await _clear_default(session, track.program_id, track.id)
    track.updated_at = utcnow()
    await session.flush()
    return track


async def copy_track(
    session: AsyncSession, org_id: uuid.UUID, track_id: uuid.UUID, body: TrackCopyIn
) -> Track:
    """A new track in another (or the same) program with this track's current modules."""
    source = await get_track(session, org_id, track_id)
    await existing_program(session, org_id, body.program_id)
    return await _add_track(
        session,
        org_id,
        body.program_id,
        body.name or source.name,
        source.modules,
        body.is_default,
    )


async def _default_track(
    session: AsyncSession, org_id: uuid.UUID, program_id: uuid.UUID
) -> Track | None:
    """The track flagged default, else the program's first track."""
    query = (
        select(Track)
        .where(Track.org_id == org_id, Track.program_id == program_id)
        .order_by(Track.is_default.desc(), Track.created_at, Track.id)
        .limit(1)
    )
    return await session.scalar(query)


async def assign_default_track(
    session: AsyncSession,
    org_id: uuid.UUID,
    program_id: uuid.UUID,
    match_id: uuid.UUID,
    started_on: date,
) -> MatchTrack | None:
    """Give an active match its program's default track (current version), once; publish
    `track.assigned` the first time. None if the program has no track."""
    track = await _default_track(session, org_id, program_id)
    if track is None:
        return None
    inserted = await session.scalar(
        pg_insert(MatchTrack)
        .values(
            match_id=match_id,
            org_id=org_id,
            program_id=program_id,
            track_id=track.id,
            version=track.version,
            started_on=started_on,
            assigned_at=utcnow(),
        )
        .on_conflict_do_nothing()
        .returning(MatchTrack.match_id)
    )
    if inserted is not None:
        event = TrackAssignedV1(
            match_id=match_id, program_id=program_id, track_id=track.id, version=track.version
        )
        add_event(session, event, source=SOURCE, orgid=org_id)
    return await session.get(MatchTrack, match_id, populate_existing=True)


async def on_match_active(
    session: AsyncSession, org_id: uuid.UUID, match: MatchState, at: datetime
) -> None:
    """A match became active: its default track and its draft agreement (each once)."""
    await assign_default_track(session, org_id, match.program_id, match.match_id, at.date())
    await agreements.create_draft(session, org_id, match.program_id, match.match_id, at)


async def _match_track(session: AsyncSession, match: MatchProjection) -> MatchTrack:
    """The match's track; an active match whose program got a track after it started is
    given it now."""
    found = await session.get(MatchTrack, match.id, populate_existing=True)
    if found is None and match.status in ACTIVE_STATUSES:
        started = (match.activated_at or utcnow()).date()
        found = await assign_default_track(
            session, match.org_id, match.program_id, match.id, started
        )
    if found is None:
        raise NotFound(f"match {match.id} has no track")
    return found


async def match_track_view(
    session: AsyncSession, caller: Caller, match_id: uuid.UUID, today: date
) -> dict[str, Any]:
    """A match's track with every step's status (open, done, overdue) and completions."""
    match = await visible_match(session, caller, match_id)
    assigned = await _match_track(session, match)
    return await _view(session, assigned, today)


async def _view(session: AsyncSession, assigned: MatchTrack, today: date) -> dict[str, Any]:
    version = await session.get(TrackVersion, (assigned.track_id, assigned.version))
    track = await session.get(Track, assigned.track_id)
    assert version is not None and track is not None
    done = await _completions(session, assigned.match_id)
    steps = []
    for module in version.modules:
        for step in module["steps"]:
            completions = done.get(step["id"], [])
            steps.append(_step_view(module["title"], step, completions, assigned, today))
    return {
        "match_id": assigned.match_id,
        "track_id": assigned.track_id,
        "name": track.name,
        "version": assigned.version,
        "started_on": assigned.started_on,
        "completed_at": assigned.completed_at,
        "steps": steps,
    }


async def move_match_track(
    session: AsyncSession,
    org_id: uuid.UUID,
    match_id: uuid.UUID,
    track_id: uuid.UUID | None,
    version: int | None,
    today: date,
) -> dict[str, Any]:
    """Move a match to another track of its program, or another version of its track
    (default: the track's current version)."""
    match = await visible_match(session, Caller(org_id, False, ("*",)), match_id)
    assigned = await _match_track(session, match)
    track = await get_track(session, org_id, track_id or assigned.track_id)
    if track.program_id != match.program_id:
        raise NotFound(f"track {track.id} is not a track of this match's program")
    target = version or track.version
    if await session.get(TrackVersion, (track.id, target)) is None:
        raise NotFound(f"track {track.id} has no version {target}")
    if (assigned.track_id, assigned.version) != (track.id, target):
        assigned.track_id, assigned.version = track.id, target
        assigned.completed_at = None
        event = TrackAssignedV1(
            match_id=match_id, program_id=match.program_id, track_id=track.id, version=target
        )
        add_event(session, event, source=SOURCE, orgid=org_id)
        await session.flush()
    view = await _view(session, assigned, today)
    if view["steps"] and all(s["status"] == "done" for s in view["steps"]):
        assigned.completed_at = max(s["completed_at"] for s in view["steps"])
        view["completed_at"] = assigned.completed_at
    return view


def _step_view(
    module: str,
    step: dict[str, Any],
    completions: list[StepCompletion],
    assigned: MatchTrack,
    today: date,
) -> dict[str, Any]:
    due_day = step.get("due_day")
    due_on = assigned.started_on + timedelta(days=due_day) if due_day is not None else None
    roles = {c.role for c in completions}
    done = set(ROLES_OF[step["completed_by"]]) <= roles
    status = "done" if done else "overdue" if due_on is not None and due_on < today else "open"
    return {
        "step_id": step["id"],
        "module": module,
        "title": step["title"],
        "kind": step["kind"],
        "completed_by": step["completed_by"],
        "due_on": due_on,
        "status": status,
        "completed_at": max(c.completed_at for c in completions) if done else None,
        "completions": [
            {
                "employee_external_id": c.employee_external_id,
                "role": c.role,
                "completed_at": c.completed_at,
            }
            for c in completions
        ],
    }


async def _completions(
    session: AsyncSession, match_id: uuid.UUID
) -> dict[str, list[StepCompletion]]:
    rows = await session.scalars(
        select(StepCompletion)
        .where(StepCompletion.match_id == match_id)
        .order_by(StepCompletion.completed_at)
    )
    found: dict[str, list[StepCompletion]] = {}
    for row in rows:
        found.setdefault(row.step_id, []).append(row)
    return found


async def complete_step(
    session: AsyncSession,
    caller: Caller,
    match_id: uuid.UUID,
    step_id: str,
    employee_external_id: str | None,
    today: date,
) -> dict[str, Any]:
    """Record a participant's part of a step (idempotent); 403 for anyone else, or for a
    participant whose role the step does not name. Publishes `track.step_completed`, and
    `track.completed` when the last step is done."""
    match = await visible_match(session, caller, match_id)
    assigned = await _match_track(session, match)
    version = await session.get(TrackVersion, (assigned.track_id, assigned.version))
    assert version is not None
    steps = {s["id"]: s for m in version.modules for s in m["steps"]}
    step = steps.get(step_id)
    if step is None:
        raise NotFound(f"step {step_id!r} is not on this match's track")
    actor, role = acting_participant(caller, match, employee_external_id)
    if role not in ROLES_OF[step["completed_by"]]:
        raise Forbidden(f"this step is completed by the {step['completed_by']}, not the {role}")
    if match.status != "active":
        raise Conflict(f"match {match_id} is {match.status}: its track is closed")
    now = utcnow()
    inserted = await session.scalar(
        pg_insert(StepCompletion)
        .values(
            match_id=match_id,
            step_id=step_id,
            role=role,
            employee_external_id=actor,
            completed_at=now,
        )
        .on_conflict_do_nothing()
        .returning(StepCompletion.step_id)
    )
    if inserted is not None:
        view = await _view(session, assigned, today)
        step_done = next(s for s in view["steps"] if s["step_id"] == step_id)["status"] == "done"
        event = TrackStepCompletedV1(
            match_id=match_id,
            program_id=assigned.program_id,
            track_id=assigned.track_id,
            version=assigned.version,
            step_id=step_id,
            employee_external_id=actor,
            role=role,
            completed_at=now,
            step_done=step_done,
        )
        add_event(session, event, source=SOURCE, orgid=assigned.org_id)
        if assigned.completed_at is None and all(s["status"] == "done" for s in view["steps"]):
            assigned.completed_at = now
            finished = TrackCompletedV1(
                match_id=match_id,
                program_id=assigned.program_id,
                track_id=assigned.track_id,
                version=assigned.version,
                completed_at=now,
            )
            add_event(session, finished, source=SOURCE, orgid=assigned.org_id)
            await session.flush()
    return await _view(session, assigned, today)


# The not-done steps past their due day of the given matches' tracks, in track order.
_OVERDUE = text(
    """
    WITH assigned AS (
        SELECT match_id, track_id, version, started_on FROM match_track
        WHERE match_id = ANY(:ids) AND completed_at IS NULL
    ), due AS (
        SELECT a.match_id, s.step ->> 'id' AS step_id, s.step ->> 'title' AS title,
               s.step ->> 'completed_by' AS completed_by, m.ord AS module, s.ord AS position
        FROM assigned AS a
        JOIN track_version AS tv USING (track_id, version)
        CROSS JOIN LATERAL jsonb_array_elements(tv.modules) WITH ORDINALITY AS m (body, ord)
        CROSS JOIN LATERAL jsonb_array_elements(m.body -> 'steps') WITH ORDINALITY AS s (step, ord)
        WHERE s.step ->> 'due_day' IS NOT NULL
          AND a.started_on + (s.step ->> 'due_day')::int < :today
    )
    SELECT d.match_id, d.title FROM due AS d
    WHERE (SELECT count(*) FROM step_completion AS c
           WHERE c.match_id = d.match_id AND c.step_id = d.step_id
             AND (d.completed_by = 'both' OR c.role = d.completed_by))
          < CASE d.completed_by WHEN 'both' THEN 2 ELSE 1 END
    ORDER BY d.match_id, d.module, d.position
    """
)


@risk_rule
async def overdue_steps(session: AsyncSession, context: RiskContext) -> dict[uuid.UUID, Reason]:
    """At risk: an active match with track steps past their due day (not done)."""
    rows = await session.execute(_OVERDUE, {"ids": context.match_ids, "today": context.now.date()})
    late: dict[uuid.UUID, list[str]] = {}
    for match_id, title in rows.all():
        late.setdefault(match_id, []).append(title)
    return {
        match_id: Reason(
            "overdue_track_steps",
            f"{len(titles)} overdue track step{'s' if len(titles) > 1 else ''}: "
            + ", ".join(repr(t) for t in titles),
        )
        for match_id, titles in late.items()
    }
