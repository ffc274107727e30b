"""Matching use cases: the projection, suggestions, the match lifecycle and cohort runs.

Use cases stage their changes and events in the caller's session; the boundary (a request
or a consumed event) commits both together. No HTTP and no Kafka here.
"""

import asyncio
import itertools
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NoReturn

from pydantic_core import to_json
from sqlalchemy import Select, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from services.matching import events
from services.matching.embeddings import EMBEDDER, pack
from services.matching.memory import collector_paused
from services.matching.models import (
    OPEN_STATUSES,
    EnrollmentProjection,
    Match,
    MatchingRun,
    PersonProjection,
    ProgramProjection,
)
from services.matching.planner import Plan, RunOptions
from services.matching.pool import (
    MENTEE_ROLES,
    MENTOR_ROLES,
    POOLS,
    Load,
    Pool,
    bump_revision,
    driver,
    load_pool,
    lock_participants,
    mentor_capacity,
    mentor_loads,
)
from services.matching.scoring import (
    Explanation,
    MentorIndex,
    Participant,
    ScoringModel,
    explain,
    hard_rule_violations,
)
from services.matching.skills import names_a_skill
from shared.consistency import await_projected
from shared.db import upsert_newer, utcnow
from shared.errors import Conflict, NotFound
from shared.events import (
    MatchAcceptedV1,
    MatchCompletedV1,
    MatchCreatedV1,
    MatchDeclinedV1,
    MatchEndedV1,
)
from shared.events.enrollments import EnrollmentState
from shared.events.matches import MatchState
from shared.events.people import PersonState
from shared.events.programs import ProgramState

# Only these leave the candidate pool's HRIS state; everything else is kept as is.
PROJECTED_FIELDS = (
    "external_id", "department", "division", "title", "time_zone", "languages",
    "manager_external_id", "hire_date", "employment_status", "attributes", "version",
)  # fmt: skip
ENROLLMENT_FIELDS = (
    "program_id", "person_id", "employee_external_id", "version", "role", "languages",
    "capacity", "preferences", "status",
)  # fmt: skip


# --- projection -------------------------------------------------------------------------


async def apply_person(
    session: AsyncSession, org_id: uuid.UUID, person: PersonState, *, deactivated: bool = False
) -> bool:
    """Project a person's latest state; older versions are ignored. A person who is no
    longer at work leaves every pool at once, and their open matches end."""
    values = {f: getattr(person, f) for f in PROJECTED_FIELDS}
    if deactivated:
        values["employment_status"] = "inactive"
    values.update(id=person.person_id, org_id=org_id, updated_at=utcnow())
    changed = await upsert_newer(session, PersonProjection, values)
    if not changed:
        return False
    enrollments = list(
        await session.scalars(
            select(EnrollmentProjection).where(
                EnrollmentProjection.org_id == org_id,
                EnrollmentProjection.employee_external_id == person.external_id,
            )
        )
    )
    if values["employment_status"] == "inactive":
        await release_open_matches(
            session, org_id, {e.id for e in enrollments}, "the person left the organization"
        )
    # Anyone's change can move someone else's manager chain: every pool of the org is stale.
    await bump_revision(session, {org_id})
    return True


async def apply_program(session: AsyncSession, org_id: uuid.UUID, program: ProgramState) -> bool:
    """Project a program's latest state (its criteria, capacity rule and status)."""
    values = {
        "id": program.program_id,
        "org_id": org_id,
        "version": program.version,
        "name": program.name,
        "format": program.format,
        "status": program.status,
        "max_mentees_per_mentor": program.max_mentees_per_mentor,
        "criteria": program.criteria,
        "updated_at": utcnow(),
    }
    changed = await upsert_newer(session, ProgramProjection, values)
    if changed:
        await bump_revision(session, {program.program_id})
    return changed


async def apply_enrollment(
    session: AsyncSession,
    org_id: uuid.UUID,
    enrollment: EnrollmentState,
    *,
    withdrawn: bool = False,
) -> bool:
    """Project an enrollment's latest state; a withdrawn one leaves the pool at once and
    its open matches end."""
    stored = (
        await session.execute(
            select(
                EnrollmentProjection.version,
                EnrollmentProjection.goals,
                EnrollmentProjection.goal_vectors,
            ).where(EnrollmentProjection.id == enrollment.enrollment_id)
        )
    ).first()
    if stored is not None and stored.version >= enrollment.version:
        return False  # stale: skip the embedding work too
    goals = list(enrollment.goals)
    if stored is not None and list(stored.goals) == goals:
        vectors = stored.goal_vectors
    else:
        vectors = await goal_vectors(goals)
    values: dict[str, Any] = {f: getattr(enrollment, f) for f in ENROLLMENT_FIELDS}
    values.update(
        id=enrollment.enrollment_id,
        org_id=org_id,
        skills=[s.model_dump() for s in enrollment.skills],
        goals=goals,
        goal_vectors=vectors,
        updated_at=utcnow(),
    )
    if withdrawn:
        values["status"] = "withdrawn"
    changed = await upsert_newer(session, EnrollmentProjection, values)
    if not changed:
        return False
    if values["status"] != "active":
        await release_open_matches(
            session, org_id, {enrollment.enrollment_id}, "the enrollment was withdrawn"
        )
    await bump_revision(session, {enrollment.program_id})
    return True


async def goal_vectors(goals: list[str]) -> bytes | None:
    """Embeddings of goals, kept only when some goal names no skill the synonyms know
    (the others match in words); computed off the event loop."""
    if all(names_a_skill(g) for g in goals):
        return None
    vectors = await asyncio.to_thread(EMBEDDER.embed, goals)
    return pack(vectors) if vectors is not None else None


async def release_open_matches(
    session: AsyncSession, org_id: uuid.UUID, enrollment_ids: set[uuid.UUID], reason: str
) -> list[Match]:
    """End the open matches of enrollments that left: proposals are declined, active
    matches end, each with `reason` and its event."""
    if not enrollment_ids:
        return []
    matches = list(
        await session.scalars(
            select(Match)
            .where(
                Match.org_id == org_id,
                Match.status.in_(OPEN_STATUSES),
                or_(
                    Match.mentee_enrollment_id.in_(enrollment_ids),
                    Match.mentor_enrollment_id.in_(enrollment_ids),
                ),
            )
            .order_by(Match.id)
            .with_for_update()
        )
    )
    for match in matches:
        if match.status == "proposed":
            _transition(session, match, "declined", MatchDeclinedV1, reason)
        else:
            _transition(session, match, "ended", MatchEndedV1, reason)
    return matches


# --- programs and pools -----------------------------------------------------------------


async def get_program(
    session: AsyncSession, org_id: uuid.UUID, program_id: uuid.UUID
) -> ProgramProjection:
    """A program of the organization, as projected."""
    # Read-your-writes: a program profiles just created may not be projected here yet.
    program = await await_projected(lambda: session.get(ProgramProjection, program_id))
    if program is None or program.org_id != org_id:
        raise NotFound(f"program {program_id} not found")
    return program


async def get_enrollment(
    session: AsyncSession, org_id: uuid.UUID, program_id: uuid.UUID, enrollment_id: uuid.UUID
) -> EnrollmentProjection:
    """An enrollment of the organization's program, as projected."""
    # Read-your-writes: an enrollment profiles just created may not be projected here yet.
    enrollment = await await_projected(lambda: session.get(EnrollmentProjection, enrollment_id))
    if enrollment is None or enrollment.org_id != org_id or enrollment.program_id != program_id:
        raise NotFound(f"enrollment {enrollment_id} not found in program {program_id}")
    return enrollment


async def await_participant(
    session: AsyncSession, org_id: uuid.UUID, program_id: uuid.UUID, enrollment_id: uuid.UUID
) -> EnrollmentProjection:
    """An enrollment and its person, once both are projected here (read-your-writes: a
    client may name an enrollment the moment profiles answered 201). One query each when
    they are there already; a 404 after the bounded wait when the enrollment never existed."""
    enrollment = await get_enrollment(session, org_id, program_id, enrollment_id)
    # The person's events travel on another topic: they may land after the enrollment's.
    await await_projected(lambda: session.get(PersonProjection, enrollment.person_id))
    return enrollment


async def current_pool(session: AsyncSession, org_id: uuid.UUID, program_id: uuid.UUID) -> Pool:
    """The program's candidate pool (cached while unchanged)."""
    program = await get_program(session, org_id, program_id)
    return await POOLS.get(session, org_id, program)


# --- suggestions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    """A mentor for a mentee, and why."""

    mentor: Participant
    explanation: Explanation


def _mentee_model(pool: Pool, mentee: Participant) -> ScoringModel:
    """One mentee against the pool's mentors, minus those they were matched with before."""
    index = pool.index
    before = pool.earlier.get(mentee.enrollment_id, set())
    return ScoringModel(
        index, [mentee], [(0, index.column[m]) for m in before if m in index.column]
    )


async def suggestions(
    session: AsyncSession,
    org_id: uuid.UUID,
    program_id: uuid.UUID,
    enrollment_id: uuid.UUID,
    limit: int,
) -> list[Suggestion]:
    """The best allowed mentors for a mentee, best first, each with its explanation."""
    await await_participant(session, org_id, program_id, enrollment_id)
    pool = await current_pool(session, org_id, program_id)
    mentee = pool.mentee(enrollment_id)
    if mentee is None:
        await _explain_absent_mentee(session, org_id, program_id, enrollment_id)
    model = _mentee_model(pool, mentee)
    return [
        Suggestion(pool.index.mentors[j], model.explain(0, j)) for j, _ in model.suggest(0, limit)
    ]


async def _explain_absent_mentee(
    session: AsyncSession, org_id: uuid.UUID, program_id: uuid.UUID, enrollment_id: uuid.UUID
) -> NoReturn:
    """Raise the precise error for an enrollment that is not an active mentee."""
    enrollment = await get_enrollment(session, org_id, program_id, enrollment_id)
    if enrollment.status != "active":
        raise Conflict(f"enrollment {enrollment_id} is {enrollment.status}")
    if enrollment.role not in MENTEE_ROLES:
        raise Conflict(f"enrollment {enrollment_id} is a {enrollment.role}, not a mentee")
    raise Conflict(f"the person of enrollment {enrollment_id} is not active")


# --- matches ----------------------------------------------------------------------------


def _transition(
    session: AsyncSession,
    match: Match,
    status: str,
    event: type[MatchState],
    reason: str | None = None,
) -> None:
    match.status = status
    match.version += 1
    match.updated_at = utcnow()
    if reason is not None:
        match.end_reason = reason
    events.publish_match(session, match, event)


def _breakdown(explanation: Explanation) -> list[dict[str, Any]]:
    return [
        {
            "criterion": c.criterion,
            "value": round(c.value, 6),
            "weight": c.weight,
            "contribution": round(c.contribution, 6),
        }
        for c in explanation.breakdown
    ]


async def create_match(
    session: AsyncSession,
    org_id: uuid.UUID,
    program_id: uuid.UUID,
    mentee_enrollment_id: uuid.UUID,
    mentor_enrollment_id: uuid.UUID,
) -> Match:
    """A mentee asks a mentor: a `proposed` match, if every hard rule allows it."""
    for enrollment_id in (mentee_enrollment_id, mentor_enrollment_id):
        await await_participant(session, org_id, program_id, enrollment_id)
    pool = await current_pool(session, org_id, program_id)
    if pool.program_status == "closed":
        raise Conflict(f"program {program_id} is closed")
    mentee = pool.mentee(mentee_enrollment_id)
    if mentee is None:
        await _explain_absent_mentee(session, org_id, program_id, mentee_enrollment_id)
    mentor_column = pool.index.column.get(mentor_enrollment_id)
    if mentor_column is None:
        await _explain_absent_mentor(session, org_id, program_id, mentor_enrollment_id)
    mentor = pool.index.mentors[mentor_column]
    broken = hard_rule_violations(pool.criteria, mentee, mentor)
    if broken:
        raise Conflict(f"this pair breaks hard rules: {', '.join(broken)}")
    if mentor_enrollment_id in pool.earlier.get(mentee_enrollment_id, ()):
        raise Conflict("this mentee and mentor were matched before")

    # The mentor's row lock serializes everyone taking this mentor's places; the count is
    # read under it, so no two requests can both see the last place free.
    active = await lock_participants(session, org_id, {mentee_enrollment_id, mentor_enrollment_id})
    if not all(active.values()):
        raise Conflict("the mentee or the mentor just left the program")
    loads = await mentor_loads(session, {mentor_enrollment_id})
    if loads[mentor_enrollment_id].active >= pool.capacity[mentor_enrollment_id]:
        raise Conflict("the mentor is at capacity")
    if await _has_open_match(session, mentee_enrollment_id):
        raise Conflict("the mentee already has an open match")
    explanation = explain(pool.criteria, mentee, mentor)
    match = Match(**_new_match(org_id, program_id, mentee, mentor, explanation, run_id=None))
    session.add(match)
    await session.flush()
    events.publish_match(session, match, MatchCreatedV1)
    await bump_revision(session, {program_id})
    return match


def _new_match(
    org_id: uuid.UUID,
    program_id: uuid.UUID,
    mentee: Participant,
    mentor: Participant,
    explanation: Explanation,
    run_id: uuid.UUID | None,
) -> dict[str, Any]:
    """The columns of a new, proposed match."""
    now = utcnow()
    return dict(
        id=uuid.uuid4(),
        org_id=org_id,
        program_id=program_id,
        mentee_enrollment_id=mentee.enrollment_id,
        mentor_enrollment_id=mentor.enrollment_id,
        mentee_person_id=mentee.person_id,
        mentor_person_id=mentor.person_id,
        mentee_external_id=mentee.external_id,
        mentor_external_id=mentor.external_id,
        status="proposed",
        score=round(explanation.score, 6),
        breakdown=_breakdown(explanation),
        reasons=list(explanation.reasons),
        run_id=run_id,
        version=1,
        created_at=now,
        updated_at=now,
    )


async def _has_open_match(session: AsyncSession, mentee_enrollment_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(Match.id).where(
            Match.mentee_enrollment_id == mentee_enrollment_id, Match.status.in_(OPEN_STATUSES)
        )
    )
    return found is not None


async def _explain_absent_mentor(
    session: AsyncSession, org_id: uuid.UUID, program_id: uuid.UUID, enrollment_id: uuid.UUID
) -> NoReturn:
    """Raise the precise error for an enrollment that is not an active mentor."""
    enrollment = await get_enrollment(session, org_id, program_id, enrollment_id)
    if enrollment.status != "active":
        raise Conflict(f"enrollment {enrollment_id} is {enrollment.status}")
    if enrollment.role not in MENTOR_ROLES:
        raise Conflict(f"enrollment {enrollment_id} is a {enrollment.role}, not a mentor")
    raise Conflict(f"the person of enrollment {enrollment_id} is not active")


async def get_match(
    session: AsyncSession, org_id: uuid.UUID, match_id: uuid.UUID, *, for_update: bool = False
) -> Match:
    """A match of the organization."""
    query = select(Match).where(Match.id == match_id, Match.org_id == org_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    match = await session.scalar(query)
    if match is None:
        raise NotFound(f"match {match_id} not found")
    return match


@dataclass(frozen=True)
class MatchFilter:
    """What `GET /v1/matches` narrows to."""

    program_id: uuid.UUID | None = None
    status: str | None = None
    mentee_enrollment_id: uuid.UUID | None = None
    mentor_enrollment_id: uuid.UUID | None = None
    run_id: uuid.UUID | None = None
    # An employee's external id: only matches they are in (mentee or mentor).
    participant: str | None = None


async def list_matches(
    session: AsyncSession,
    org_id: uuid.UUID,
    where: MatchFilter,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[Match]:
    """Matches of the organization, oldest first."""
    query: Select[Any] = select(Match).where(Match.org_id == org_id)
    for column, value in (
        (Match.program_id, where.program_id),
        (Match.status, where.status),
        (Match.mentee_enrollment_id, where.mentee_enrollment_id),
        (Match.mentor_enrollment_id, where.mentor_enrollment_id),
        (Match.run_id, where.run_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if where.participant is not None:
        query = query.where(
            or_(
                Match.mentee_external_id == where.participant,
                Match.mentor_external_id == where.participant,
            )
        )
    if after is not None:
        query = query.where(tuple_(Match.created_at, Match.id) > after)
    query = query.order_by(Match.created_at, Match.id).limit(limit)
    return (await session.scalars(query)).all()


async def accept_match(session: AsyncSession, org_id: uuid.UUID, match_id: uuid.UUID) -> Match:
    """The mentor accepts: the match becomes active and takes one of their places."""
    match = await get_match(session, org_id, match_id)
    # Lock order everywhere: enrollments, then people, then the match.
    active = await lock_participants(
        session, org_id, {match.mentee_enrollment_id, match.mentor_enrollment_id}
    )
    match = await get_match(session, org_id, match_id, for_update=True)
    if match.status != "proposed":
        raise Conflict(f"match {match_id} is {match.status}, not proposed")
    if not all(active.values()):
        raise Conflict("the mentee or the mentor of this match is no longer active")
    program = await get_program(session, org_id, match.program_id)
    mentor = await session.get(EnrollmentProjection, match.mentor_enrollment_id)
    assert mentor is not None
    loads = await mentor_loads(session, {mentor.id})
    if loads[mentor.id].active >= mentor_capacity(program, mentor.capacity):
        raise Conflict("the mentor is at capacity")
    _transition(session, match, "active", MatchAcceptedV1)
    await bump_revision(session, {match.program_id})
    return match


async def decline_match(session: AsyncSession, org_id: uuid.UUID, match_id: uuid.UUID) -> Match:
    """The mentor declines a proposal."""
    match = await get_match(session, org_id, match_id, for_update=True)
    if match.status != "proposed":
        raise Conflict(f"match {match_id} is {match.status}, not proposed")
    _transition(session, match, "declined", MatchDeclinedV1)
    await bump_revision(session, {match.program_id})
    return match


async def end_match(
    session: AsyncSession, org_id: uuid.UUID, match_id: uuid.UUID, reason: str
) -> Match:
    """End a proposed or active match early, with a reason."""
    match = await get_match(session, org_id, match_id, for_update=True)
    if match.status not in OPEN_STATUSES:
        raise Conflict(f"match {match_id} is {match.status} already")
    _transition(session, match, "ended", MatchEndedV1, reason)
    await bump_revision(session, {match.program_id})
    return match


async def complete_match(session: AsyncSession, org_id: uuid.UUID, match_id: uuid.UUID) -> Match:
    """An active match ran its course."""
    match = await get_match(session, org_id, match_id, for_update=True)
    if match.status != "active":
        raise Conflict(f"match {match_id} is {match.status}, not active")
    _transition(session, match, "completed", MatchCompletedV1)
    await bump_revision(session, {match.program_id})
    return match


# --- matching runs ----------------------------------------------------------------------


async def create_run(
    session: AsyncSession, org_id: uuid.UUID, program_id: uuid.UUID, options: dict[str, Any]
) -> MatchingRun:
    """Queue a cohort run; a worker picks it up."""
    program = await get_program(session, org_id, program_id)
    if program.status == "closed":
        raise Conflict(f"program {program_id} is closed")
    run = MatchingRun(
        id=uuid.uuid4(),
        org_id=org_id,
        program_id=program_id,
        status="pending",
        objective=options.get("objective", "max_score"),
        options=options,
        progress=0.0,
        warnings=[],
        timings={},
        attempts=0,
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    session.add(run)
    await session.flush()
    return run


async def get_run(session: AsyncSession, org_id: uuid.UUID, run_id: uuid.UUID) -> MatchingRun:
    """A run of the organization."""
    run = await session.get(MatchingRun, run_id)
    if run is None or run.org_id != org_id:
        raise NotFound(f"matching run {run_id} not found")
    return run


async def list_runs(
    session: AsyncSession,
    org_id: uuid.UUID,
    program_id: uuid.UUID,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[MatchingRun]:
    """A program's runs, newest first."""
    await get_program(session, org_id, program_id)
    query = select(MatchingRun).where(
        MatchingRun.org_id == org_id, MatchingRun.program_id == program_id
    )
    if before is not None:
        query = query.where(tuple_(MatchingRun.created_at, MatchingRun.id) < before)
    query = query.order_by(MatchingRun.created_at.desc(), MatchingRun.id.desc()).limit(limit)
    return (await session.scalars(query)).all()


@dataclass
class RunInputs:
    """What a run computes on: the model and how its rows map back to enrollments."""

    pool: Pool
    model: ScoringModel
    options: RunOptions
    warnings: list[str]


def _load(pool: Pool, mentor: Participant) -> Load:
    return pool.load.get(mentor.enrollment_id) or Load()


def prepare_run(pool: Pool, options: dict[str, Any]) -> RunInputs:
    """The run's model: mentees without an open match against mentors with places left
    once their open proposals are counted too (so applying never overbooks)."""
    mentees = [p for p in pool.mentees if p.enrollment_id not in pool.open_mentees]
    mentors = [
        replace(
            m,
            capacity=pool.capacity[m.enrollment_id]
            - _load(pool, m).active
            - _load(pool, m).proposed,
        )
        for m in pool.mentors
    ]
    index = MentorIndex(pool.criteria, mentors)
    rows = {p.enrollment_id: i for i, p in enumerate(mentees)}
    pairs = [
        (rows[a], index.column[b])
        for a, mentors_before in pool.earlier.items()
        for b in mentors_before
        if a in rows and b in index.column
    ]
    pinned: list[tuple[int, int]] = []
    warnings: list[str] = []
    for kind in ("pinned", "forbidden"):
        for item in options.get(kind) or []:
            a = uuid.UUID(str(item["mentee_enrollment_id"]))
            b = uuid.UUID(str(item["mentor_enrollment_id"]))
            if a in rows and b in index.column:
                (pinned if kind == "pinned" else pairs).append((rows[a], index.column[b]))
            elif kind == "pinned":
                warnings.append(
                    f"pinned pair {a} -> {b} ignored: not an unmatched mentee and a mentor "
                    "with open places of this program"
                )
    model = ScoringModel(index, mentees, pairs)
    run_options = RunOptions(
        objective=options.get("objective", "max_score"),
        min_score=options.get("min_score"),
        one_mentee_per_department=bool(options.get("one_mentee_per_department")),
        candidates_per_mentee=int(options.get("candidates_per_mentee", 50)),
        pinned=tuple(pinned),
    )
    return RunInputs(pool, model, run_options, warnings)


async def load_run_inputs(session: AsyncSession, run: MatchingRun) -> RunInputs:
    """Read the pool fresh (not from the cache: a run records exactly what it saw)."""
    program = await get_program(session, run.org_id, run.program_id)
    pool = await load_pool(session, run.org_id, program)
    return prepare_run(pool, run.options)


def run_result(inputs: RunInputs, plan: Plan) -> dict[str, Any]:
    """A plan as the run row stores it."""
    mentees, mentors = inputs.model.mentees, inputs.model.index.mentors
    return {
        "total_score": round(plan.total_score, 6),
        "matched_count": len(plan.proposals),
        "proposals": [
            {
                "mentee_enrollment_id": str(mentees[p.mentee].enrollment_id),
                "mentor_enrollment_id": str(mentors[p.mentor].enrollment_id),
                "mentee_external_id": mentees[p.mentee].external_id,
                "mentor_external_id": mentors[p.mentor].external_id,
                "score": round(p.explanation.score, 6),
                "pinned": p.pinned,
                "breakdown": _breakdown(p.explanation),
                "reasons": list(p.explanation.reasons),
            }
            for p in plan.proposals
        ],
        "unmatched": [
            {"mentee_enrollment_id": str(mentees[i].enrollment_id), "reason": reason}
            for i, reason in plan.unmatched
        ],
        "warnings": inputs.warnings + plan.warnings,
        "timings": {k: round(v, 4) for k, v in plan.timings.items()},
        "inputs_version": inputs.pool.inputs_version(),
    }


@dataclass(frozen=True)
class Applied:
    """What applying a run did."""

    created: list[dict[str, Any]]  # the new matches' columns
    skipped: list[dict[str, str]]


# A run's proposals as applying needs them, in stored order: read in the database, so the
# breakdowns and reasons of tens of thousands of proposals are never decoded.
_PROPOSALS = """
    SELECT (p ->> 'mentee_enrollment_id')::uuid, (p ->> 'mentor_enrollment_id')::uuid,
           (p ->> 'score')::float8
    FROM matching_run AS r
         CROSS JOIN LATERAL jsonb_array_elements(r.proposals) WITH ORDINALITY AS e (p, n)
    WHERE r.id = $1
    ORDER BY e.n
"""
# New matches (`_new_match` columns) in one statement, each column one array parameter
# (binary UUIDs and numbers; the JSON columns as text).
_MATCH_COLUMNS = {
    "id": "uuid", "org_id": "uuid", "program_id": "uuid", "mentee_enrollment_id": "uuid",
    "mentor_enrollment_id": "uuid", "mentee_person_id": "uuid", "mentor_person_id": "uuid",
    "mentee_external_id": "text", "mentor_external_id": "text", "status": "text",
    "score": "float8", "breakdown": "jsonb", "reasons": "jsonb", "run_id": "uuid",
    "version": "integer", "created_at": "timestamptz", "updated_at": "timestamptz",
}  # fmt: skip
_MATCH_VALUES = ", ".join(
    f"r.{c}::jsonb" if t == "jsonb" else f"r.{c}" for c, t in _MATCH_COLUMNS.items()
)
_MATCH_ARRAYS = ", ".join(
    f"${k}::{'text' if t == 'jsonb' else t}[]" for k, t in enumerate(_MATCH_COLUMNS.values(), 1)
)
_INSERT_MATCHES = f"""
    INSERT INTO match ({", ".join(_MATCH_COLUMNS)})
    SELECT {_MATCH_VALUES}
    FROM unnest({_MATCH_ARRAYS}) AS r ({", ".join(_MATCH_COLUMNS)})
"""


def _match_arrays(matches: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """`_INSERT_MATCHES`' parameters: one list per column."""
    return [
        [to_json(m[c]).decode() for m in matches] if t == "jsonb" else [m[c] for m in matches]
        for c, t in _MATCH_COLUMNS.items()
    ]


async def _lock_run(session: AsyncSession, org_id: uuid.UUID, run_id: uuid.UUID) -> MatchingRun:
    """A run of the organization, row-locked and read fresh; its (large) proposals and
    unmatched lists are left unloaded."""
    run = await session.scalar(
        select(MatchingRun)
        .where(MatchingRun.id == run_id, MatchingRun.org_id == org_id)
        .options(defer(MatchingRun.proposals), defer(MatchingRun.unmatched))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if run is None:
        raise NotFound(f"matching run {run_id} not found")
    return run


async def apply_run(session: AsyncSession, org_id: uuid.UUID, run_id: uuid.UUID) -> Applied:
    """Turn a run's proposals into proposed matches, re-checking every rule and place now:
    whatever changed since the run (a withdrawal, a new match) wins over the proposal.

    A run may propose tens of thousands of matches: the proposals are read, the
    participants locked and the loads counted with one statement each; the matches and
    their events are inserted in batches of `APPLY_BATCH`, one statement per table."""
    run = await _lock_run(session, org_id, run_id)
    if run.status != "succeeded":
        raise Conflict(f"matching run {run_id} is {run.status}; only a succeeded run applies")
    if run.applied_at is not None:
        raise Conflict(f"matching run {run_id} was applied already")
    # Tens of thousands of rows read and dicts made, no cycles among them (see memory.py).
    with collector_paused():
        conn = await driver(session)
        proposals: list[tuple[uuid.UUID, uuid.UUID, float]] = list(
            await conn.fetch(_PROPOSALS, run.id)
        )
        mentor_ids = {mentor_id for _, mentor_id, _ in proposals}
        mentee_ids = {mentee_id for mentee_id, _, _ in proposals}
        await lock_participants(session, org_id, mentor_ids | mentee_ids)
        program = await get_program(session, org_id, run.program_id)
        # Read after the locks, so this is the current state (the cache checks its revision).
        pool = await POOLS.get(session, org_id, program)
        loads = await mentor_loads(session, mentor_ids)
        skipped: list[dict[str, str]] = []
        new_matches = _new_matches(pool, loads, proposals, org_id, run, skipped)
        created = await _insert_in_batches(session, org_id, new_matches)
    run.applied_at = utcnow()
    run.applied = {"created": len(created), "skipped": len(skipped)}
    await bump_revision(session, {run.program_id})
    return Applied(created, skipped)


APPLY_BATCH = 2_000  # new matches per insert


async def _insert_in_batches(
    session: AsyncSession, org_id: uuid.UUID, new_matches: Iterator[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Insert new matches and stage their `match.created` events, `APPLY_BATCH` at a time.

    Making the matches (checking and explaining the proposals) is CPU work, inserting them
    database work: a thread prepares the next batch while the database inserts the last."""
    conn = await driver(session)

    def next_batch() -> _Batch | None:
        batch = list(itertools.islice(new_matches, APPLY_BATCH))
        if not batch:
            return None
        return _Batch(batch, _match_arrays(batch), events.created_outbox(org_id, batch))

    created: list[dict[str, Any]] = []
    ahead = asyncio.ensure_future(asyncio.to_thread(next_batch))
    try:
        while (batch := await ahead) is not None:
            ahead = asyncio.ensure_future(asyncio.to_thread(next_batch))
            await conn.execute(_INSERT_MATCHES, *batch.arrays)
            await events.stage_outbox(session, batch.outbox)
            created += batch.matches
    finally:
        ahead.cancel()  # on an error: the batch being prepared is dropped
    return created


@dataclass(frozen=True)
class _Batch:
    """New matches, ready to insert: their columns' arrays and their events' outbox rows."""

    matches: list[dict[str, Any]]
    arrays: list[list[Any]]
    outbox: str


def _new_matches(
    pool: Pool,
    loads: dict[uuid.UUID, Load],
    proposals: Sequence[tuple[uuid.UUID, uuid.UUID, float]],
    org_id: uuid.UUID,
    run: MatchingRun,
    skipped: list[dict[str, str]],
) -> Iterator[dict[str, Any]]:
    """The new matches' columns, best score first: each proposal re-checked against the
    pool and the mentors' loads as they are now (`loads` counts the new matches in as they
    are made); the proposals that no longer fit go to `skipped`, with why."""
    open_mentees = set(pool.open_mentees)
    mentor_rows = {m.enrollment_id: m for m in pool.mentors}
    for mentee_id, mentor_id, _ in sorted(proposals, key=lambda p: -p[2]):
        mentee, mentor = pool.mentee(mentee_id), mentor_rows.get(mentor_id)
        reason = None
        if mentee is None:
            reason = "the mentee is no longer in the program's pool"
        elif mentor is None:
            reason = "the mentor is no longer in the program's pool"
        elif mentee_id in open_mentees:
            reason = "the mentee has an open match already"
        elif mentor_id in pool.earlier.get(mentee_id, ()):
            reason = "this mentee and mentor were matched before"
        elif broken := hard_rule_violations(pool.criteria, mentee, mentor):
            reason = f"the pair now breaks hard rules: {', '.join(broken)}"
        elif loads[mentor_id].active + loads[mentor_id].proposed >= pool.capacity[mentor_id]:
            reason = "the mentor has no open place any more"
        if reason is not None or mentee is None or mentor is None:
            skipped.append(
                {
                    "mentee_enrollment_id": str(mentee_id),
                    "mentor_enrollment_id": str(mentor_id),
                    "reason": reason or "",
                }
            )
            continue
        explanation = explain(pool.criteria, mentee, mentor)
        loads[mentor_id].proposed += 1
        open_mentees.add(mentee_id)
        yield _new_match(org_id, run.program_id, mentee, mentor, explanation, run.id)
