"""Check-ins: a participant's 1-5 pulse on whether their match is working. No HTTP and no
Kafka here."""

import uuid

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.models import Checkin
from services.feedback.projections import visible_match
from shared.db import utcnow
from shared.errors import Conflict, FieldError, Forbidden, InvalidInput
from shared.events.feedback import CheckinRecordedV1
from shared.identity import Caller
from shared.outbox import add_event
from shared.pagination import CreatedAfter

SOURCE = "mentorbus/feedback"


async def record(
    session: AsyncSession,
    caller: Caller,
    match_id: uuid.UUID,
    employee_external_id: str | None,
    rating: int,
    comment: str | None,
) -> Checkin:
    """Record a participant's check-in on an active match. A member checks in as
    themselves (the default); anyone else must name a participant (422 otherwise)."""
    match = await visible_match(session, caller, match_id)
    who = employee_external_id or caller.subject
    if caller.is_member and who != caller.subject:
        raise Forbidden("a member checks in only as themselves")
    people = match.participants()
    if who is None or who not in people:
        raise InvalidInput(
            [FieldError("employee_external_id", "must name the match's mentee or mentor")]
        )
    if match.status != "active":
        raise Conflict(f"match {match_id} is {match.status}, not active")
    checkin = Checkin(
        id=uuid.uuid4(),
        org_id=match.org_id,
        match_id=match.id,
        program_id=match.program_id,
        employee_external_id=who,
        role=people[who],
        rating=rating,
        comment=comment,
        created_at=utcnow(),
    )
    session.add(checkin)
    add_event(
        session,
        CheckinRecordedV1(
            checkin_id=checkin.id,
            match_id=match.id,
            program_id=match.program_id,
            employee_external_id=who,
            role=checkin.role,
            rating=rating,
            comment=comment,
            recorded_at=checkin.created_at,
        ),
        source=SOURCE,
        orgid=match.org_id,
    )
    return checkin


async def list_checkins(
    session: AsyncSession,
    caller: Caller,
    match_id: uuid.UUID,
    after: CreatedAfter | None,
    limit: int,
) -> list[Checkin]:
    """A match's check-ins, oldest first (404 if the caller may not see the match)."""
    await visible_match(session, caller, match_id)
    query = select(Checkin).where(Checkin.match_id == match_id)
    if after is not None:
        query = query.where(tuple_(Checkin.created_at, Checkin.id) > after)
    query = query.order_by(Checkin.created_at, Checkin.id).limit(limit)
    return list((await session.scalars(query)).all())
