"""What feedback consumes (`person.*`, `program.*`, `enrollment.*`, `match.*`,
`session.*`) and what it publishes (`feedback.*`, `goal.*`, `checkin.*`)."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback import domain, history, projections, tracks
from shared.consumer import Handler
from shared.events import (
    CloudEvent,
    EnrollmentCreatedV1,
    EnrollmentUpdatedV1,
    EnrollmentWithdrawnV1,
    EventData,
    MatchAcceptedV1,
    MatchCompletedV1,
    MatchCreatedV1,
    MatchDeclinedV1,
    MatchEndedV1,
    PersonDeactivatedV1,
    PersonUpsertedV1,
    ProgramCreatedV1,
    ProgramUpdatedV1,
)
from shared.events.enrollments import EnrollmentState
from shared.events.matches import MatchState
from shared.events.people import PersonState
from shared.events.programs import ProgramState

SOURCE = "mentorbus/feedback"


async def on_person(session: AsyncSession, event: CloudEvent, person: PersonState) -> None:
    """A person changed or left: stop or keep asking them for feedback."""
    await domain.apply_person(session, uuid.UUID(event.orgid), person)
    await history.apply_person_history(session, uuid.UUID(event.orgid), person, event.time.date())


async def on_program(session: AsyncSession, event: CloudEvent, program: ProgramState) -> None:
    """A program was set up or changed."""
    await projections.apply_program(session, uuid.UUID(event.orgid), program)


async def on_enrollment(
    session: AsyncSession, event: CloudEvent, enrollment: EnrollmentState
) -> None:
    """Someone enrolled, changed their enrollment, or withdrew (participation figures)."""
    await projections.apply_enrollment(
        session,
        uuid.UUID(event.orgid),
        enrollment,
        event.time,
        created=isinstance(enrollment, EnrollmentCreatedV1),
    )


async def on_match(session: AsyncSession, event: CloudEvent, match: MatchState) -> None:
    """A match was proposed, accepted, declined, ended or completed."""
    await projections.apply_match(session, uuid.UUID(event.orgid), match, event.time)
    if match.status == "active":
        await tracks.on_match_active(session, uuid.UUID(event.orgid), match, event.time)


HANDLERS: dict[type[EventData], Handler] = {
    PersonUpsertedV1: on_person,
    PersonDeactivatedV1: on_person,
    ProgramCreatedV1: on_program,
    ProgramUpdatedV1: on_program,
    EnrollmentCreatedV1: on_enrollment,
    EnrollmentUpdatedV1: on_enrollment,
    EnrollmentWithdrawnV1: on_enrollment,
    MatchCreatedV1: on_match,
    MatchAcceptedV1: on_match,
    MatchDeclinedV1: on_match,
    MatchEndedV1: on_match,
    MatchCompletedV1: on_match,
}
