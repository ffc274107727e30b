"""What matching consumes (people, programs, enrollments: its projection) and what it
publishes (`match.*`, through the outbox in the same transaction as the change)."""

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.matching import domain
from services.matching.models import Match
from shared.consumer import Handler
from shared.events import (
    CloudEvent,
    EnrollmentCreatedV1,
    EnrollmentUpdatedV1,
    EnrollmentWithdrawnV1,
    EventData,
    MatchCreatedV1,
    PersonDeactivatedV1,
    PersonUpsertedV1,
    ProgramCreatedV1,
    ProgramUpdatedV1,
)
from shared.events.enrollments import EnrollmentState
from shared.events.matches import MatchState
from shared.events.people import PersonState
from shared.events.programs import ProgramState
from shared.outbox import add_event, add_events

SOURCE = "mentorbus/matching"


async def on_person(session: AsyncSession, event: CloudEvent, person: PersonState) -> None:
    """A person changed or left: refresh the candidate pool's view of them."""
    await domain.apply_person(
        session,
        uuid.UUID(event.orgid),
        person,
        deactivated=isinstance(person, PersonDeactivatedV1),
    )


async def on_program(session: AsyncSession, event: CloudEvent, program: ProgramState) -> None:
    """A program was set up or changed (criteria, capacity rule, status)."""
    await domain.apply_program(session, uuid.UUID(event.orgid), program)


async def on_enrollment(
    session: AsyncSession, event: CloudEvent, enrollment: EnrollmentState
) -> None:
    """Someone enrolled, changed their enrollment, or withdrew."""
    await domain.apply_enrollment(
        session,
        uuid.UUID(event.orgid),
        enrollment,
        withdrawn=isinstance(enrollment, EnrollmentWithdrawnV1),
    )


HANDLERS: dict[type[EventData], Handler] = {
    PersonUpsertedV1: on_person,
    PersonDeactivatedV1: on_person,
    ProgramCreatedV1: on_program,
    ProgramUpdatedV1: on_program,
    EnrollmentCreatedV1: on_enrollment,
    EnrollmentUpdatedV1: on_enrollment,
    EnrollmentWithdrawnV1: on_enrollment,
}


def match_state(match: Match | Mapping[str, Any], event: type[MatchState]) -> MatchState:
    """The event of a match's state (a stored match, or the values of one being inserted)."""
    values = match if isinstance(match, Mapping) else {f: getattr(match, f) for f in _FIELDS}
    return event(match_id=values["id"], **{f: values.get(f) for f in _FIELDS if f != "id"})


_FIELDS = (
    "id", "program_id", "version", "mentee_enrollment_id", "mentor_enrollment_id",
    "mentee_person_id", "mentor_person_id", "mentee_external_id", "mentor_external_id",
    "status", "score", "end_reason",
)  # fmt: skip


def publish_match(session: AsyncSession, match: Match, event: type[MatchState]) -> None:
    """Stage the event of a match's new state in the current transaction."""
    add_event(session, match_state(match, event), source=SOURCE, orgid=match.org_id)


async def publish_new_matches(
    session: AsyncSession, org_id: uuid.UUID, matches: Sequence[Mapping[str, Any]]
) -> None:
    """Stage `match.created` for many matches at once (an applied run)."""
    data = [match_state(m, MatchCreatedV1) for m in matches]
    await add_events(session, data, source=SOURCE, orgid=org_id)
