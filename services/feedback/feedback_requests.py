"""Feedback requests: who is asked for feedback, from session outcomes and ended matches.
No HTTP and no Kafka here.

Creating requests is idempotent by construction (unique indexes on the session occurrence
and person, or the match and person): a redelivered or replayed event asks nobody twice.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback import rollups
from services.feedback.models import (
    FeedbackRequest,
    MatchProjection,
    PersonProjection,
    SessionProjection,
)
from shared.db import upsert_newer, utcnow
from shared.events.matches import MatchState
from shared.events.sessions import SessionState
from shared.pagination import CreatedAfter

_OCCURRENCE_KEY = """
    session_id = :session_id
    AND COALESCE(occurrence_starts_at, '-infinity'::timestamptz)
        = COALESCE(CAST(:occurrence_starts_at AS timestamptz), '-infinity'::timestamptz)
"""
_CURRENT_OUTCOME = text(
    "SELECT program_id, held_at, status, version FROM session_occurrence WHERE "
    + _OCCURRENCE_KEY
    + " FOR UPDATE"
)
_INSERT_OUTCOME = text(
    """
    INSERT INTO session_occurrence
        (org_id, session_id, occurrence_starts_at, program_id, match_id, group_id, held_at,
         status, version)
    VALUES (:org_id, :session_id, :occurrence_starts_at, :program_id, :match_id, :group_id,
            :held_at, :status, :version)
    """
)
_UPDATE_OUTCOME = text(
    "UPDATE session_occurrence SET status = :status, version = :version, held_at = :held_at,"
    " program_id = COALESCE(:program_id, program_id) WHERE " + _OCCURRENCE_KEY
)


async def apply_session(
    session: AsyncSession,
    org_id: uuid.UUID,
    state: SessionState,
    outcome: str | None,
    at: datetime,
    expiry: timedelta,
) -> None:
    """Keep a session's newest state; record the outcome of the occurrence an outcome event
    names (newest session version wins); when that occurrence stands completed, ask each
    participant for feedback once."""
    program_id = state.program_id
    if program_id is None and state.match_id is not None:
        match = await session.get(MatchProjection, state.match_id)
        program_id = match.program_id if match is not None else None
    await upsert_newer(
        session,
        SessionProjection,
        {
            "id": state.session_id,
            "org_id": org_id,
            "program_id": program_id,
            "match_id": state.match_id,
            "group_id": state.group_id,
            "starts_at": state.starts_at,
            "duration_minutes": state.duration_minutes,
            "rrule": state.rrule,
            "status": state.status,
            "participants": [p.model_dump(mode="json") for p in state.participants],
            "version": state.version,
            "updated_at": utcnow(),
        },
    )
    if outcome is None:
        return
    occurrence = {
        "session_id": state.session_id,
        "occurrence_starts_at": state.occurrence_starts_at,
    }
    held_at = state.occurrence_starts_at or state.starts_at
    values = {
        **occurrence,
        "org_id": org_id,
        "program_id": program_id,
        "match_id": state.match_id,
        "group_id": state.group_id,
        "held_at": held_at,
        "status": outcome,
        "version": state.version,
    }
    # The consumer handles one session's events in order on one partition, and this row
    # lock holds off anyone else: read the old outcome, then move its count.
    old = (await session.execute(_CURRENT_OUTCOME, occurrence)).first()
    if old is None:
        await session.execute(_INSERT_OUTCOME, values)
    elif old.version < state.version:
        await session.execute(_UPDATE_OUTCOME, values)
        await rollups.count_occurrence(session, old.program_id, old.held_at, old.status, -1)
    else:
        outcome = old.status  # an older or repeated event: nothing moves
    if old is None or old.version < state.version:
        counted_in = program_id or (old.program_id if old else None)
        await rollups.count_occurrence(session, counted_in, held_at, outcome)
    # A completion that a newer cancellation overtook asks nobody.
    if outcome != "completed":
        return
    await _ask(
        session,
        [
            {
                "org_id": org_id,
                "kind": "session",
                "program_id": program_id,
                "match_id": state.match_id,
                "group_id": state.group_id,
                **occurrence,
                "person_id": p.person_id,
                "employee_external_id": p.external_id,
                "role": p.role,
            }
            for p in state.participants
        ],
        at,
        expiry,
    )


async def ask_at_match_end(
    session: AsyncSession, org_id: uuid.UUID, match: MatchState, at: datetime, expiry: timedelta
) -> None:
    """A match ended or completed: its mentee and mentor each get a `match_end` request."""
    if match.status not in {"ended", "completed"}:
        return
    people = [
        (match.mentee_external_id, match.mentee_person_id, "mentee"),
        (match.mentor_external_id, match.mentor_person_id, "mentor"),
    ]
    await _ask(
        session,
        [
            {
                "org_id": org_id,
                "kind": "match_end",
                "program_id": match.program_id,
                "match_id": match.match_id,
                "group_id": match.group_id,
                "session_id": None,
                "occurrence_starts_at": None,
                "person_id": person_id,
                "employee_external_id": external_id,
                "role": role,
            }
            for external_id, person_id, role in people
            if external_id
        ],
        at,
        expiry,
    )


async def _ask(
    session: AsyncSession, requests: list[dict[str, Any]], at: datetime, expiry: timedelta
) -> None:
    if not requests:
        return
    # Nobody who has left the organization is asked.
    gone = set(
        await session.scalars(
            select(PersonProjection.external_id).where(
                PersonProjection.org_id == requests[0]["org_id"],
                PersonProjection.external_id.in_([r["employee_external_id"] for r in requests]),
                PersonProjection.employment_status == "inactive",
            )
        )
    )
    requests = [r for r in requests if r["employee_external_id"] not in gone]
    if not requests:
        return
    values = [
        {**r, "id": uuid.uuid4(), "status": "pending", "created_at": at, "expires_at": at + expiry}
        for r in requests
    ]
    await session.execute(pg_insert(FeedbackRequest).values(values).on_conflict_do_nothing())


@dataclass(frozen=True)
class RequestFilter:
    """Which requests a list shows."""

    employee: str | None = None
    status: str | None = None  # pending | answered | expired
    kind: str | None = None
    match_id: uuid.UUID | None = None


async def list_requests(
    session: AsyncSession,
    org_id: uuid.UUID,
    where: RequestFilter,
    after: CreatedAfter | None,
    limit: int,
) -> list[FeedbackRequest]:
    """Requests of the organization, oldest first, narrowed by `where`."""
    now = utcnow()
    query = select(FeedbackRequest).where(FeedbackRequest.org_id == org_id)
    if where.employee is not None:
        query = query.where(FeedbackRequest.employee_external_id == where.employee)
    if where.kind is not None:
        query = query.where(FeedbackRequest.kind == where.kind)
    if where.match_id is not None:
        query = query.where(FeedbackRequest.match_id == where.match_id)
    if where.status == "answered":
        query = query.where(FeedbackRequest.status == "answered")
    elif where.status == "pending":
        query = query.where(FeedbackRequest.status == "pending", FeedbackRequest.expires_at > now)
    elif where.status == "expired":
        query = query.where(FeedbackRequest.status == "pending", FeedbackRequest.expires_at <= now)
    if after is not None:
        query = query.where(tuple_(FeedbackRequest.created_at, FeedbackRequest.id) > after)
    query = query.order_by(FeedbackRequest.created_at, FeedbackRequest.id).limit(limit)
    return list((await session.scalars(query)).all())


_EXPIRE_LEAVERS = text(
    """
    UPDATE feedback_request AS r SET expires_at = :at
    FROM person AS p
    WHERE p.id = ANY(:person_ids) AND p.employment_status = 'inactive'
      AND r.org_id = p.org_id AND r.employee_external_id = p.external_id
      AND r.status = 'pending' AND r.expires_at > :at
    """
)


async def expire_for_leavers(
    session: AsyncSession, person_ids: list[uuid.UUID], at: datetime
) -> None:
    """People who left are no longer asked: their pending requests expire now. Judged on
    the person projection as it stands after the batch, so an older "left" event that
    arrives after a rehire expires nothing."""
    if person_ids:
        await session.execute(_EXPIRE_LEAVERS, {"person_ids": person_ids, "at": at})
