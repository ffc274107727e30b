"""Matching's reads: programs and enrollments as projected, candidate pools, and
suggestions. No HTTP and no Kafka here."""

import uuid
from dataclasses import dataclass
from typing import NoReturn

from sqlalchemy.ext.asyncio import AsyncSession

from services.matching.criteria import Participant
from services.matching.explain import Explanation
from services.matching.models import EnrollmentProjection, ProgramProjection
from services.matching.pool import MENTEE_ROLES, MENTOR_ROLES, POOLS, Pool
from services.matching.scoring import ScoringModel
from shared.errors import Conflict, NotFound

# --- programs and pools -----------------------------------------------------------------


async def get_program(
    session: AsyncSession, org_id: uuid.UUID, program_id: uuid.UUID
) -> ProgramProjection:
    """A program of the organization, as projected."""
    program = await session.get(ProgramProjection, program_id)
    if program is None or program.org_id != org_id:
        raise NotFound(f"program {program_id} not found")
    return program


async def get_enrollment(
    session: AsyncSession, org_id: uuid.UUID, program_id: uuid.UUID, enrollment_id: uuid.UUID
) -> EnrollmentProjection:
    """An enrollment of the organization's program, as projected."""
    enrollment = await session.get(EnrollmentProjection, enrollment_id)
    if enrollment is None or enrollment.org_id != org_id or enrollment.program_id != program_id:
        raise NotFound(f"enrollment {enrollment_id} not found in program {program_id}")
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
    pool = await current_pool(session, org_id, program_id)
    mentee = pool.mentee(enrollment_id)
    if mentee is None:
        await explain_absent_mentee(session, org_id, program_id, enrollment_id)
    model = _mentee_model(pool, mentee)
    return [
        Suggestion(pool.index.mentors[j], model.explain(0, j)) for j, _ in model.suggest(0, limit)
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
