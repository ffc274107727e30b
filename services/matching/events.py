"""What matching consumes: people, programs and enrollments (its projection), and completed
sessions (a flash match completes after its first). What it publishes is in `publish.py`."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.matching import lifecycle, projection
from shared.consumer import Handler, batched
from shared.events import (
    CloudEvent,
    EnrollmentCreatedV1,
    EnrollmentUpdatedV1,
    EnrollmentWithdrawnV1,
    EventData,
    PersonDeactivatedV1,
    PersonUpsertedV1,
    ProgramCreatedV1,
    ProgramUpdatedV1,
    SessionCompletedV1,
)
from shared.events.enrollments import EnrollmentState
from shared.events.programs import ProgramState
from shared.events.sessions import SessionState


async def on_program(session: AsyncSession, event: CloudEvent, program: ProgramState) -> None:
    """A program was set up or changed (criteria, capacity rule, status)."""
    await projection.apply_program(session, uuid.UUID(event.orgid), program)


async def on_enrollment(
    session: AsyncSession, event: CloudEvent, enrollment: EnrollmentState
) -> None:
    """Someone enrolled, changed their enrollment, or withdrew."""
    await projection.apply_enrollment(
        session,
        uuid.UUID(event.orgid),
        enrollment,
        withdrawn=isinstance(enrollment, EnrollmentWithdrawnV1),
    )


on_people = batched(projection.apply_people, idempotent=True)


async def on_session_completed(
    session: AsyncSession, event: CloudEvent, completed: SessionState
) -> None:
    """A session took place: a flash match completes after its first one. A redelivery
    is skipped by the inbox; a later session of a completed match changes nothing."""
    if completed.match_id is not None:
        await lifecycle.complete_flash(session, uuid.UUID(event.orgid), completed.match_id)


HANDLERS: dict[type[EventData], Handler] = {
    PersonUpsertedV1: on_people,
    PersonDeactivatedV1: on_people,
    ProgramCreatedV1: on_program,
    ProgramUpdatedV1: on_program,
    EnrollmentCreatedV1: on_enrollment,
    EnrollmentUpdatedV1: on_enrollment,
    EnrollmentWithdrawnV1: on_enrollment,
    SessionCompletedV1: on_session_completed,
}
