"""What feedback consumes (`person.*`, `program.*`, `enrollment.*`, `match.*`,
`session.*`) and what it publishes (`feedback.*`, `goal.*`, `checkin.*`)."""

import functools
import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback import domain, feedback_requests, history, projections, tracks
from services.feedback.settings import FeedbackSettings
from shared.consumer import Handler, batched
from shared.db import utcnow
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
    SessionCancelledV1,
    SessionCompletedV1,
    SessionNoShowV1,
    SessionRescheduledV1,
    SessionScheduledV1,
)
from shared.events.enrollments import EnrollmentState
from shared.events.matches import MatchState
from shared.events.people import PersonState
from shared.events.programs import ProgramState
from shared.events.sessions import SessionState

SOURCE = "mentorbus/feedback"


@functools.cache
def _request_expiry() -> timedelta:
    # Handlers keep the shared one-signature contract, so they read the setting here.
    return timedelta(hours=FeedbackSettings().feedback_request_expiry_hours)


async def apply_people(session: AsyncSession, events: list[tuple[CloudEvent, PersonState]]) -> None:
    """People changed or left: the person projection and the dated states of the person
    history (outcomes), each in one set-based statement for the whole batch; the pending
    feedback requests of those who left expire."""
    await domain.apply_people(session, events)
    await history.apply_history(
        session, [history.history_row(e.orgid, person, e.time.date()) for e, person in events]
    )
    leavers = [p.person_id for _, p in events if p.employment_status == "inactive"]
    await feedback_requests.expire_for_leavers(session, leavers, utcnow())


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
    org_id = uuid.UUID(event.orgid)
    await projections.apply_match(session, org_id, match, event.time)
    if match.status == "active":
        await tracks.on_match_active(session, org_id, match, event.time)
    await feedback_requests.ask_at_match_end(session, org_id, match, event.time, _request_expiry())


async def on_session(session: AsyncSession, event: CloudEvent, state: SessionState) -> None:
    """A session was booked, moved, held, missed or cancelled: keep it and the outcome of
    the occurrence; a held one asks each participant for feedback (once)."""
    outcome = _OUTCOMES.get(type(state))
    await feedback_requests.apply_session(
        session, uuid.UUID(event.orgid), state, outcome, event.time, _request_expiry()
    )


_OUTCOMES: dict[type[SessionState], str] = {
    SessionCompletedV1: "completed",
    SessionNoShowV1: "no_show",
    SessionCancelledV1: "cancelled",
}


HANDLERS: dict[type[EventData], Handler] = {
    PersonUpsertedV1: batched(apply_people, idempotent=True),
    PersonDeactivatedV1: batched(apply_people, idempotent=True),
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
    SessionScheduledV1: on_session,
    SessionRescheduledV1: on_session,
    SessionCompletedV1: on_session,
    SessionNoShowV1: on_session,
    SessionCancelledV1: on_session,
}
