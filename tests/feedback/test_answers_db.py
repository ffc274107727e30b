"""Answer rules on a real (throwaway) feedback database: the edit window, one answer per
request, nps only at the end of a match."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback import answers
from services.feedback.models import FeedbackRequest
from shared.db import utcnow
from shared.errors import Conflict, InvalidInput
from shared.identity import Caller
from shared.outbox import OutboxMessage


async def asked(
    session: AsyncSession, org_id: uuid.UUID, kind: str, program_id: uuid.UUID | None = None
) -> FeedbackRequest:
    now = utcnow()
    request = FeedbackRequest(
        id=uuid.uuid4(), org_id=org_id, kind=kind, employee_external_id="E-1", role="mentee",
        program_id=program_id, match_id=None, group_id=None, session_id=None,
        occurrence_starts_at=None, person_id=None, status="pending", created_at=now,
        expires_at=now + timedelta(days=1), answered_at=None,
    )  # fmt: skip
    session.add(request)
    await session.flush()
    return request


async def test_edit_window_and_one_answer(session: AsyncSession) -> None:
    org_id, program_id = uuid.uuid4(), uuid.uuid4()
    caller = Caller(org_id, False)
    request = await asked(session, org_id, "match_end", program_id)
    feedback = await answers.submit(session, caller, request.id, 4, "ok", ["a"], 9)
    assert (feedback.nps, request.status) == (9, "answered")
    with pytest.raises(Conflict):
        await answers.submit(session, caller, request.id, 5, None, [], None)

    assert await daily(session, program_id) == [(1, 4, 1, 0, 0)]
    edited = await answers.edit(
        session, caller, feedback.id, {"rating": 5, "nps": 3}, timedelta(hours=1)
    )
    assert (edited.rating, edited.version) == (5, 2)
    # The daily rollup moved the answer's figures, it did not add a second answer.
    assert await daily(session, program_id) == [(1, 5, 0, 0, 1)]
    unchanged = await answers.edit(session, caller, feedback.id, {"rating": 5}, timedelta(hours=1))
    assert unchanged.version == 2
    with pytest.raises(Conflict):
        await answers.edit(session, caller, feedback.id, {"rating": 1}, timedelta(0))
    types = await session.scalars(select(OutboxMessage.event_type).order_by(OutboxMessage.id))
    assert list(types) == ["mentorbus.feedback.submitted.v1", "mentorbus.feedback.updated.v1"]

    session_request = await asked(session, org_id, "session")
    with pytest.raises(InvalidInput):
        await answers.submit(session, caller, session_request.id, 4, None, [], 7)
    assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 2


async def daily(session: AsyncSession, program_id: uuid.UUID) -> list[tuple[int, ...]]:
    rows = await session.execute(
        text(
            "SELECT ratings, rating_sum, promoters, passives, detractors FROM feedback_daily"
            " WHERE program_id = :p"
        ),
        {"p": program_id},
    )
    return [tuple(r) for r in rows]
