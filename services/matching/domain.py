"""Matching's reads: programs and enrollments as projected, candidate pools, and
suggestions. No HTTP and no Kafka here."""

import uuid
from dataclasses import dataclass, replace
from typing import NoReturn

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from services.matching.criteria import Participant
from services.matching.explain import Explanation, explain, explain_peers
from services.matching.models import EnrollmentProjection, PersonProjection, ProgramProjection
from services.matching.pool import MENTEE_ROLES, MENTOR_ROLES, POOLS, Pool
from services.matching.scoring import MentorIndex, ScoringModel
from shared.consistency import await_projected
from shared.errors import Conflict, NotFound

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
    """Someone suggested to an enrollment, and why: a mentor for a mentee (or a peer for a
    peer) when `side` is "mentor", a mentee for a mentor when it is "mentee"."""

    other: Participant
    explanation: Explanation
    side: str = "mentor"


def _mentee_model(pool: Pool, mentee: Participant) -> ScoringModel:
    """One mentee against the pool's mentors, minus those never to propose again."""
    index = pool.index
    before = pool.earlier.get(mentee.enrollment_id, set())
    return ScoringModel(
        index, [mentee], [(0, index.column[m]) for m in before if m in index.column]
    )


def _mentor_model(pool: Pool, mentor: Participant) -> tuple[ScoringModel, list[Participant]]:
    """The mentees without an open match against one mentor (as if they had a place: a
    mentor browsing whom they would suit), minus pairs never to propose again."""
    seekers = [p for p in pool.mentees if p.enrollment_id not in pool.open_mentees]
    index = MentorIndex(pool.criteria, [replace(mentor, capacity=1)])
    excluded = [
        (i, 0)
        for i, p in enumerate(seekers)
        if mentor.enrollment_id in pool.earlier.get(p.enrollment_id, ())
        or p.enrollment_id == mentor.enrollment_id
    ]
    return ScoringModel(index, seekers, excluded), seekers


def _best(values: np.ndarray, allowed: np.ndarray, limit: int) -> list[int]:
    """The positions of the `limit` best allowed values, best first (ties by position)."""
    rows = np.flatnonzero(allowed)
    order = np.lexsort((rows, -values[rows]))[:limit]
    return [int(r) for r in rows[order]]


async def suggestions(
    session: AsyncSession,
    org_id: uuid.UUID,
    program_id: uuid.UUID,
    enrollment_id: uuid.UUID,
    limit: int,
) -> list[Suggestion]:
    """The best allowed matches for an enrollment, best first, each explained: mentors for
    a mentee, mentees for a mentor, peers for a peer (scored both ways)."""
    await await_participant(session, org_id, program_id, enrollment_id)
    pool = await current_pool(session, org_id, program_id)
    mentee = pool.mentee(enrollment_id)
    if mentee is None:
        column = pool.index.column.get(enrollment_id)
        if column is not None and pool.format != "peer":
            return mentees_for(pool, pool.index.mentors[column], limit)
        await explain_absent_mentee(session, org_id, program_id, enrollment_id)
    if pool.format == "peer":
        return peers_for(pool, mentee, limit)
    model = _mentee_model(pool, mentee)
    return [
        Suggestion(pool.index.mentors[j], model.explain(0, j)) for j, _ in model.suggest(0, limit)
    ]


def mentees_for(pool: Pool, mentor: Participant, limit: int) -> list[Suggestion]:
    """The mentees a mentor would suit best, explained as their suggestions are."""
    model, seekers = _mentor_model(pool, mentor)
    score, ok = model.score_block(0, model.m)
    return [
        Suggestion(seekers[i], explain(pool.criteria, seekers[i], mentor), "mentee")
        for i in _best(score[:, 0], ok[:, 0], limit)
    ]


def peers_for(pool: Pool, peer: Participant, limit: int) -> list[Suggestion]:
    """The best partners of a peer: each pair scored both ways (the mean), allowed both
    ways, the partner with a place left, never a pair that met before."""
    forward, ok_forward = _mentee_model(pool, peer).score_block(0, 1)
    column = pool.index.column.get(peer.enrollment_id)
    if column is None:
        return []
    backward, seekers = _mentor_model(pool, pool.index.mentors[column])
    back_score, back_ok = backward.score_block(0, backward.m)
    rows = {p.enrollment_id: i for i, p in enumerate(seekers)}
    partners = [p for p in seekers if p.enrollment_id in pool.index.column]
    cols = np.array([pool.index.column[p.enrollment_id] for p in partners], dtype=np.int64)
    back = np.array([rows[p.enrollment_id] for p in partners], dtype=np.int64)
    if not partners:
        return []
    score = (forward[0, cols] + back_score[back, 0]) / 2
    allowed = ok_forward[0, cols] & back_ok[back, 0]
    return [
        Suggestion(
            pool.index.mentors[int(cols[k])], explain_peers(pool.criteria, peer, partners[k])
        )
        for k in _best(score, allowed, limit)
    ]


async def explain_absent_mentee(
    session: AsyncSession, org_id: uuid.UUID, program_id: uuid.UUID, enrollment_id: uuid.UUID
) -> NoReturn:
    """Raise the precise error for an enrollment that is not an active mentee."""
    enrollment = await get_enrollment(session, org_id, program_id, enrollment_id)
    if enrollment.status != "active":
        raise Conflict(f"enrollment {enrollment_id} is {enrollment.status}")
    if enrollment.role not in MENTEE_ROLES:
        raise Conflict(f"enrollment {enrollment_id} is a {enrollment.role}, not a mentee")
    raise Conflict(f"the person of enrollment {enrollment_id} is not active")


async def explain_absent_mentor(
    session: AsyncSession, org_id: uuid.UUID, program_id: uuid.UUID, enrollment_id: uuid.UUID
) -> NoReturn:
    """Raise the precise error for an enrollment that is not an active mentor."""
    enrollment = await get_enrollment(session, org_id, program_id, enrollment_id)
    if enrollment.status != "active":
        raise Conflict(f"enrollment {enrollment_id} is {enrollment.status}")
    if enrollment.role not in MENTOR_ROLES:
        raise Conflict(f"enrollment {enrollment_id} is a {enrollment.role}, not a mentor")
    raise Conflict(f"the person of enrollment {enrollment_id} is not active")
