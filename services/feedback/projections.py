"""Feedback's projections of other services' aggregates (programs, enrollments, matches),
and the lookups of them that requests make. No HTTP and no Kafka here.

Each projection applies an event's state only if its `version` is newer than the stored
one; the `*_at` columns record when the event that set them happened (its CloudEvents
`time`) and keep the earliest such time, so redelivered and reordered events leave the same
rows whichever order they come in.
"""

import functools
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, case, func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.models import EnrollmentProjection, MatchProjection, ProgramProjection
from shared.consistency import await_projected
from shared.db import Base, upsert_newer, utcnow
from shared.errors import NotFound
from shared.events.enrollments import EnrollmentState
from shared.events.matches import MatchState
from shared.events.programs import ProgramState
from shared.identity import Caller


async def upsert_versioned(
    session: AsyncSession, model: type[Base], values: dict[str, Any], earliest: Sequence[str]
) -> None:
    """Like `upsert_newer`, but the `earliest` timestamp columns are merged whatever the
    version: each keeps the earliest non-null time any event gave it."""
    statement = _upsert_versioned_statement(
        cast(Table, model.__table__), tuple(values), tuple(earliest)
    )
    await session.execute(statement, values)


@functools.cache
def _upsert_versioned_statement(
    table: Table, columns: tuple[str, ...], earliest: tuple[str, ...]
) -> Any:
    statement = pg_insert(table)
    keys = {c.name for c in table.primary_key.columns}
    newer = table.c.version < statement.excluded.version
    set_: dict[str, Any] = {}
    for name in columns:
        if name in keys:
            continue
        if name in earliest:
            set_[name] = func.least(table.c[name], statement.excluded[name])
        else:
            # Older state never overwrites newer: keep the stored column unless newer.
            set_[name] = case((newer, statement.excluded[name]), else_=table.c[name])
    return statement.on_conflict_do_update(index_elements=sorted(keys), set_=set_)


async def apply_program(session: AsyncSession, org_id: uuid.UUID, program: ProgramState) -> bool:
    """Keep a program's name, format, status and dates."""
    values = {
        "id": program.program_id,
        "org_id": org_id,
        "name": program.name,
        "format": program.format,
        "status": program.status,
        "starts_on": program.starts_on,
        "ends_on": program.ends_on,
        "version": program.version,
        "updated_at": utcnow(),
    }
    return await upsert_newer(session, ProgramProjection, values)


async def apply_enrollment(
    session: AsyncSession,
    org_id: uuid.UUID,
    enrollment: EnrollmentState,
    at: datetime,
    *,
    created: bool = False,
) -> None:
    """Keep an enrollment; `at` is the event's time (the enrollment's creation time when
    `created`, its withdrawal time when the state says withdrawn)."""
    values = {
        "id": enrollment.enrollment_id,
        "org_id": org_id,
        "program_id": enrollment.program_id,
        "person_id": enrollment.person_id,
        "employee_external_id": enrollment.employee_external_id,
        "role": enrollment.role,
        "status": enrollment.status,
        "version": enrollment.version,
        "created_at": at if created else None,
        "withdrawn_at": at if enrollment.status == "withdrawn" else None,
        "updated_at": utcnow(),
    }
    await upsert_versioned(session, EnrollmentProjection, values, ("created_at", "withdrawn_at"))


# Which timestamp a match event's time sets, by the status it carries.
_MATCH_TIME_COLUMN = {
    "proposed": "created_at",
    "active": "activated_at",
    "ended": "ended_at",
    "completed": "ended_at",
}


async def apply_match(
    session: AsyncSession, org_id: uuid.UUID, match: MatchState, at: datetime
) -> None:
    """Keep a match; `at` (the event's time) becomes its created, activated or ended time
    according to the status the event carries."""
    values: dict[str, Any] = {
        "id": match.match_id,
        "org_id": org_id,
        "program_id": match.program_id,
        "group_id": match.group_id,
        "mentee_enrollment_id": match.mentee_enrollment_id,
        "mentor_enrollment_id": match.mentor_enrollment_id,
        "mentee_person_id": match.mentee_person_id,
        "mentor_person_id": match.mentor_person_id,
        "mentee_external_id": match.mentee_external_id,
        "mentor_external_id": match.mentor_external_id,
        "status": match.status,
        "score": match.score,
        "end_reason": match.end_reason,
        "version": match.version,
        "created_at": None,
        "activated_at": None,
        "ended_at": None,
        "updated_at": utcnow(),
    }
    column = _MATCH_TIME_COLUMN.get(match.status)
    if column is not None:
        values[column] = at
    await upsert_versioned(
        session, MatchProjection, values, ("created_at", "activated_at", "ended_at")
    )


async def find_match(
    session: AsyncSession, org_id: uuid.UUID, match_id: uuid.UUID
) -> MatchProjection | None:
    """A match of the organization, if this projection holds it already."""
    match = await session.get(MatchProjection, match_id, populate_existing=True)
    return match if match is not None and match.org_id == org_id else None


async def visible_match(
    session: AsyncSession, caller: Caller, match_id: uuid.UUID
) -> MatchProjection:
    """A match the caller may see: waits (bounded) for the projection to catch up with an
    id matching just returned; 404 if it never shows up, or if a member is not in it."""
    assert caller.org_id is not None
    org_id = caller.org_id
    match = await await_projected(lambda: find_match(session, org_id, match_id))
    if match is None or (caller.is_member and caller.subject not in match.participants()):
        raise NotFound(f"match {match_id} not found")
    return match


async def existing_program(
    session: AsyncSession, org_id: uuid.UUID, program_id: uuid.UUID
) -> ProgramProjection:
    """A program of the organization, waiting (bounded) for its projection; else 404."""

    async def lookup() -> ProgramProjection | None:
        program = await session.get(ProgramProjection, program_id, populate_existing=True)
        return program if program is not None and program.org_id == org_id else None

    program = await await_projected(lookup)
    if program is None:
        raise NotFound(f"program {program_id} not found")
    return program
