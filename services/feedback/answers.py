"""Answers to feedback requests: one per request, editable for a while. No HTTP and no
Kafka here; each change stages its event in the caller's transaction."""

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback import rollups
from services.feedback.models import Feedback, FeedbackRequest
from shared.db import utcnow
from shared.errors import Conflict, FieldError, InvalidInput, NotFound
from shared.events.feedback import FeedbackState, FeedbackSubmittedV1, FeedbackUpdatedV1
from shared.identity import Caller
from shared.outbox import add_event

SOURCE = "mentorbus/feedback"


async def visible_request(
    session: AsyncSession, caller: Caller, request_id: uuid.UUID, *, lock: bool = False
) -> FeedbackRequest:
    """A request the caller may see (a member only their own); 404 otherwise."""
    query = select(FeedbackRequest).where(
        FeedbackRequest.id == request_id, FeedbackRequest.org_id == caller.org_id
    )
    if lock:
        query = query.with_for_update()
    request = (await session.scalars(query)).first()
    if request is None or (caller.is_member and request.employee_external_id != caller.subject):
        raise NotFound(f"feedback request {request_id} not found")
    return request


async def answer_of(session: AsyncSession, request_id: uuid.UUID) -> Feedback | None:
    """The answer given to a request, if any."""
    return (
        await session.scalars(select(Feedback).where(Feedback.request_id == request_id))
    ).first()


def _check_nps(request: FeedbackRequest, nps: int | None) -> None:
    if nps is not None and request.kind != "match_end":
        raise InvalidInput([FieldError("nps", "only end-of-match (match_end) requests take nps")])


async def submit(
    session: AsyncSession,
    caller: Caller,
    request_id: uuid.UUID,
    rating: int,
    comment: str | None,
    tags: list[str],
    nps: int | None,
) -> Feedback:
    """Answer a request: 409 if it is already answered or has expired; `nps` only on
    `match_end` requests (422 naming `nps` otherwise). The comment is stored as given."""
    request = await visible_request(session, caller, request_id, lock=True)
    now = utcnow()
    status = request.status_at(now)
    if status == "answered":
        raise Conflict(f"feedback request {request_id} is already answered")
    if status == "expired":
        raise Conflict(f"feedback request {request_id} expired at {request.expires_at}")
    _check_nps(request, nps)
    feedback = Feedback(
        id=uuid.uuid4(),
        org_id=request.org_id,
        request_id=request.id,
        kind=request.kind,
        program_id=request.program_id,
        match_id=request.match_id,
        session_id=request.session_id,
        employee_external_id=request.employee_external_id,
        role=request.role,
        rating=rating,
        nps=nps,
        comment=comment,
        tags=tags,
        version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(feedback)
    request.status = "answered"
    request.answered_at = now
    await session.flush()
    await rollups.count_answer(
        session, feedback.program_id, feedback.match_id, now, feedback.role, rating, nps
    )
    add_event(
        session, _state(FeedbackSubmittedV1, feedback, request), source=SOURCE, orgid=request.org_id
    )
    return feedback


async def visible_feedback(
    session: AsyncSession, caller: Caller, feedback_id: uuid.UUID, *, lock: bool = False
) -> tuple[Feedback, FeedbackRequest]:
    """An answer the caller may see (a member only their own) and its request; else 404."""
    query = select(Feedback).where(Feedback.id == feedback_id, Feedback.org_id == caller.org_id)
    if lock:
        query = query.with_for_update()
    feedback = (await session.scalars(query)).first()
    if feedback is None or (caller.is_member and feedback.employee_external_id != caller.subject):
        raise NotFound(f"feedback {feedback_id} not found")
    request = await session.get(FeedbackRequest, feedback.request_id)
    assert request is not None
    return feedback, request


async def edit(
    session: AsyncSession,
    caller: Caller,
    feedback_id: uuid.UUID,
    changes: dict[str, Any],
    edit_window: timedelta,
) -> Feedback:
    """Change an answer (rating, comment, tags, nps) within the edit window (409 after)."""
    feedback, request = await visible_feedback(session, caller, feedback_id, lock=True)
    now = utcnow()
    if now > feedback.created_at + edit_window:
        raise Conflict(f"feedback {feedback_id} can no longer be edited (edit window closed)")
    if "nps" in changes:
        _check_nps(request, changes["nps"])
    changed = {k: v for k, v in changes.items() if getattr(feedback, k) != v}
    if not changed:
        return feedback
    before = (feedback.rating, feedback.nps)
    for key, value in changed.items():
        setattr(feedback, key, value)
    if before != (feedback.rating, feedback.nps):  # move the answer's figures in its day
        where = (feedback.program_id, feedback.match_id, feedback.created_at, feedback.role)
        await rollups.count_answer(session, *where, *before, sign=-1)
        await rollups.count_answer(session, *where, feedback.rating, feedback.nps)
    feedback.version += 1
    feedback.updated_at = now
    await session.flush()
    add_event(
        session, _state(FeedbackUpdatedV1, feedback, request), source=SOURCE, orgid=request.org_id
    )
    return feedback


def _state(
    event: type[FeedbackState], feedback: Feedback, request: FeedbackRequest
) -> FeedbackState:
    return event(
        feedback_id=feedback.id,
        request_id=request.id,
        version=feedback.version,
        kind=feedback.kind,
        program_id=feedback.program_id,
        match_id=feedback.match_id,
        session_id=feedback.session_id,
        occurrence_starts_at=request.occurrence_starts_at,
        employee_external_id=feedback.employee_external_id,
        role=feedback.role,
        rating=feedback.rating,
        nps=feedback.nps,
        comment=feedback.comment,
        tags=list(feedback.tags),
        submitted_at=feedback.created_at,
    )
