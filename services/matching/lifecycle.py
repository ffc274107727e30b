"""The match lifecycle: a mentee asks a mentor (proposed), the mentor accepts (active) or
declines, a match ends early or completes. Use cases stage their change and its event in
the caller's session; the boundary commits both."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.matching.criteria import Participant
from services.matching.domain import (
    await_participant,
    current_pool,
    explain_absent_mentee,
    explain_absent_mentor,
    get_program,
)
from services.matching.explain import Explanation, explain, explain_peers, hard_rule_violations
from services.matching.models import OPEN_STATUSES, EnrollmentProjection, Match, ProgramProjection
from services.matching.pool import (
    Pool,
    bump_revision,
    lock_participants,
    mentor_capacity,
    mentor_loads,
)
from services.matching.publish import publish_match, transition
from shared.db import utcnow
from shared.errors import Conflict, NotFound
from shared.events import (
    MatchAcceptedV1,
    MatchCompletedV1,
    MatchCreatedV1,
    MatchDeclinedV1,
    MatchEndedV1,
)

# --- matches ----------------------------------------------------------------------------


def breakdown_rows(explanation: Explanation) -> list[dict[str, Any]]:
    """A breakdown as matches and runs store it (rounded)."""
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
        await explain_absent_mentee(session, org_id, program_id, mentee_enrollment_id)
    mentor_column = pool.index.column.get(mentor_enrollment_id)
    if mentor_column is None:
        await explain_absent_mentor(session, org_id, program_id, mentor_enrollment_id)
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
    peer = pool.format == "peer"
    if peer:  # each peer's places count pairs on either side
        loads = await mentor_loads(session, {mentee_enrollment_id, mentor_enrollment_id}, peer=True)
        for side in (mentee_enrollment_id, mentor_enrollment_id):
            if loads[side].active + loads[side].proposed >= pool.capacity[side]:
                raise Conflict(f"peer {side} has no open place")
    else:
        loads = await mentor_loads(session, {mentor_enrollment_id})
        if loads[mentor_enrollment_id].active >= pool.capacity[mentor_enrollment_id]:
            raise Conflict("the mentor is at capacity")
        if await _has_open_match(session, mentee_enrollment_id):
            raise Conflict("the mentee already has an open match")
    explanation = pair_explanation(pool, mentee, mentor)
    values = new_match(org_id, program_id, mentee, mentor, explanation, None, pool.format)
    match = Match(**values)
    session.add(match)
    await session.flush()
    publish_match(session, match, MatchCreatedV1)
    await bump_revision(session, {program_id})
    return match


def pair_explanation(pool: Pool, mentee: Participant, mentor: Participant) -> Explanation:
    """Why a pair scores what it does: mentee and mentor, or two peers (both ways)."""
    if pool.format == "peer":  # both as learners: the mentee view has the goals
        return explain_peers(pool.criteria, mentee, pool.mentee(mentor.enrollment_id) or mentor)
    return explain(pool.criteria, mentee, mentor)


# Circle ids are derived, so every member's match of one mentor's circle carries the same
# id without a table of circles: `uuid5(CIRCLES, "<program>:<mentor enrollment>")`.
CIRCLES = uuid.UUID("6b7d1c39-3a55-4a8e-9d9c-5f1f2f3f4c01")


def circle_id(program_id: uuid.UUID, mentor_enrollment_id: uuid.UUID) -> uuid.UUID:
    """The id of the circle a mentor leads in a group program."""
    return uuid.uuid5(CIRCLES, f"{program_id}:{mentor_enrollment_id}")


def new_match(
    org_id: uuid.UUID,
    program_id: uuid.UUID,
    mentee: Participant,
    mentor: Participant,
    explanation: Explanation,
    run_id: uuid.UUID | None,
    format: str = "one_to_one",
) -> dict[str, Any]:
    """The columns of a new, proposed match (a group program's carry the circle's id)."""
    now = utcnow()
    group = circle_id(program_id, mentor.enrollment_id) if format == "group" else None
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
        breakdown=breakdown_rows(explanation),
        reasons=list(explanation.reasons),
        run_id=run_id,
        group_id=group,
        peer=format == "peer",
        version=1,
        created_at=now,
        updated_at=now,
    )


async def complete_flash(session: AsyncSession, org_id: uuid.UUID, match_id: uuid.UUID) -> bool:
    """A flash match's first completed session completes it (once: a match that is not
    active any more, or of another format, is left as it is). Whether it changed."""
    match = await session.scalar(
        select(Match).where(Match.id == match_id, Match.org_id == org_id).with_for_update()
    )
    if match is None or match.status != "active":
        return False
    program = await session.get(ProgramProjection, match.program_id)
    if program is None or program.format != "flash":
        return False
    transition(session, match, "completed", MatchCompletedV1)
    await bump_revision(session, {match.program_id})
    return True


async def group_matches(
    session: AsyncSession, org_id: uuid.UUID, group_id: uuid.UUID
) -> Sequence[Match]:
    """The matches of a circle, oldest first (404 if no match carries its id)."""
    found = (
        await session.scalars(
            select(Match)
            .where(Match.org_id == org_id, Match.group_id == group_id)
            .order_by(Match.created_at, Match.id)
        )
    ).all()
    if not found:
        raise NotFound(f"group {group_id} not found")
    return found


async def _has_open_match(session: AsyncSession, mentee_enrollment_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(Match.id).where(
            Match.mentee_enrollment_id == mentee_enrollment_id, Match.status.in_(OPEN_STATUSES)
        )
    )
    return found is not None


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
    transition(session, match, "active", MatchAcceptedV1)
    await bump_revision(session, {match.program_id})
    return match


async def decline_match(session: AsyncSession, org_id: uuid.UUID, match_id: uuid.UUID) -> Match:
    """The mentor declines a proposal."""
    match = await get_match(session, org_id, match_id, for_update=True)
    if match.status != "proposed":
        raise Conflict(f"match {match_id} is {match.status}, not proposed")
    transition(session, match, "declined", MatchDeclinedV1)
    await bump_revision(session, {match.program_id})
    return match


async def end_match(
    session: AsyncSession, org_id: uuid.UUID, match_id: uuid.UUID, reason: str
) -> Match:
    """End a proposed or active match early, with a reason."""
    match = await get_match(session, org_id, match_id, for_update=True)
    if match.status not in OPEN_STATUSES:
        raise Conflict(f"match {match_id} is {match.status} already")
    transition(session, match, "ended", MatchEndedV1, reason)
    await bump_revision(session, {match.program_id})
    return match


async def complete_match(session: AsyncSession, org_id: uuid.UUID, match_id: uuid.UUID) -> Match:
    """An active match ran its course."""
    match = await get_match(session, org_id, match_id, for_update=True)
    if match.status != "active":
        raise Conflict(f"match {match_id} is {match.status}, not active")
    transition(session, match, "completed", MatchCompletedV1)
    await bump_revision(session, {match.program_id})
    return match
