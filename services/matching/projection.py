"""Matching's projection of people, programs and enrollments, kept from their events: a
person who leaves or an enrollment withdrawn leaves every pool at once, and their open
matches end."""

import asyncio
import uuid
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.matching.embeddings import EMBEDDER, pack
from services.matching.models import (
    OPEN_STATUSES,
    EnrollmentProjection,
    Match,
    PersonProjection,
    ProgramProjection,
)
from services.matching.pool import bump_revision
from services.matching.publish import transition
from services.matching.skills import names_a_skill
from shared.db import upsert_newer, upsert_newer_many, utcnow
from shared.events import CloudEvent, MatchDeclinedV1, MatchEndedV1, PersonDeactivatedV1
from shared.events.enrollments import EnrollmentState
from shared.events.people import PersonState
from shared.events.programs import ProgramState

# Only these leave the candidate pool's HRIS state; everything else is kept as is.
PROJECTED_FIELDS = (
    "external_id", "department", "division", "title", "time_zone", "languages",
    "manager_external_id", "hire_date", "employment_status", "attributes", "version",
)  # fmt: skip
ENROLLMENT_FIELDS = (
    "program_id", "person_id", "employee_external_id", "version", "role", "languages",
    "capacity", "preferences", "status", "answers",
)  # fmt: skip


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


async def apply_people(session: AsyncSession, people: list[tuple[CloudEvent, PersonState]]) -> None:
    """A batch of person events: one version-guarded upsert for all of them (older versions
    ignored), then what `apply_person` does for the people that changed, set-based."""
    now = utcnow()
    rows = []
    for event, person in people:
        values = {f: getattr(person, f) for f in PROJECTED_FIELDS}
        if isinstance(person, PersonDeactivatedV1):
            values["employment_status"] = "inactive"
        rows.append({"id": person.person_id, "org_id": event.orgid, **values, "updated_at": now})
    changed = set(map(str, await upsert_newer_many(session, PersonProjection, rows)))
    if not changed:
        return
    applied = [r for r in rows if str(r["id"]) in changed]
    orgs = {uuid.UUID(str(r["org_id"])) for r in applied}
    for org_id in sorted(orgs):
        leaving = {
            r["external_id"]
            for r in applied
            if r["employment_status"] == "inactive" and uuid.UUID(str(r["org_id"])) == org_id
        }
        if not leaving:
            continue
        enrollments = await session.scalars(
            select(EnrollmentProjection.id).where(
                EnrollmentProjection.org_id == org_id,
                EnrollmentProjection.employee_external_id.in_(leaving),
            )
        )
        await release_open_matches(
            session, org_id, set(enrollments), "the person left the organization"
        )
    # Anyone's change can move someone else's manager chain: every pool of the org is stale.
    await bump_revision(session, orgs)


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
            transition(session, match, "declined", MatchDeclinedV1, reason)
        else:
            transition(session, match, "ended", MatchEndedV1, reason)
    return matches
