"""The session consumer's rules on a real (throwaway) feedback database: occurrence
outcomes and their daily counts under repeated and reordered events, and who is asked."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.domain import apply_person
from services.feedback.feedback_requests import apply_session
from shared.events import PersonDeactivatedV1, SessionCompletedV1, SessionParticipant

START = datetime(2026, 3, 2, 9, tzinfo=UTC)
WEEK = timedelta(days=7)


def occurrence(
    session_id: uuid.UUID, program_id: uuid.UUID, version: int, status: str, at: datetime
) -> SessionCompletedV1:
    return SessionCompletedV1(
        session_id=session_id, version=version, match_id=uuid.uuid4(), program_id=program_id,
        starts_at=START, duration_minutes=30, rrule="FREQ=WEEKLY", status=status,
        occurrence_starts_at=at,
        participants=[SessionParticipant(external_id="E-1", role="mentee"),
                      SessionParticipant(external_id="M-1", role="mentor")],
    )  # fmt: skip


async def table(session: AsyncSession, query: str, **params: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await session.execute(text(query), params)]


async def test_outcomes_counts_and_who_is_asked(session: AsyncSession) -> None:
    org_id, program_id, series = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    expiry = timedelta(days=14)
    first, second = START, START + WEEK

    async def apply(version: int, outcome: str, at: datetime) -> None:
        state = occurrence(series, program_id, version, "scheduled", at)
        await apply_session(session, org_id, state, outcome, START, expiry)

    await apply(2, "completed", first)
    await apply(2, "completed", first)  # the same event again (e.g. replayed): no effect
    await apply(4, "cancelled", second)  # newer cancellation first ...
    await apply(3, "completed", second)  # ... then the older completion: it loses
    days = await table(
        session,
        "SELECT day, status, occurrences FROM session_daily WHERE program_id = :p ORDER BY 1",
        p=program_id,
    )
    assert days == [(first.date(), "completed", 1), (second.date(), "cancelled", 1)]
    asked = await table(
        session,
        "SELECT occurrence_starts_at, employee_external_id FROM feedback_request ORDER BY 1, 2",
    )
    assert asked == [(first, "E-1"), (first, "M-1")]

    # A later, newer completion of the second occurrence moves its count and asks, but
    # not the mentor, who has left the organization meanwhile.
    await apply_person(
        session,
        org_id,
        PersonDeactivatedV1(
            person_id=uuid.uuid4(), external_id="M-1", version=2, employment_status="inactive"
        ),
    )
    await apply(5, "completed", second)
    days = await table(
        session,
        "SELECT day, status, occurrences FROM session_daily WHERE program_id = :p ORDER BY 1, 2",
        p=program_id,
    )
    assert days == [
        (first.date(), "completed", 1),
        (second.date(), "cancelled", 0),
        (second.date(), "completed", 1),
    ]
    asked = await table(
        session,
        "SELECT occurrence_starts_at, employee_external_id FROM feedback_request ORDER BY 1, 2",
    )
    assert asked == [(first, "E-1"), (first, "M-1"), (second, "E-1")]
