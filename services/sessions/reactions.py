"""What other services' events do to sessions: a match that ended or was declined, or a
person offboarded, cancels their future occurrences (completed ones stay). Only scheduled
occurrences change, so a redelivered or second event (match ended after an offboarding)
finds nothing left to do and publishes nothing."""

import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.sessions import store
from services.sessions.models import Busy, Occurrence, Session, SessionParticipant
from services.sessions.store import SessionView, publish, touch
from shared.db import utcnow
from shared.events.sessions import SessionCancelledV1, SessionRescheduledV1

ENDED = {"declined", "ended"}


async def _cancel_future(session: AsyncSession, view: SessionView, reason: str) -> bool:
    now = utcnow()
    targets = [o for o in view.occurrences if o.status == "scheduled" and o.starts_at > now]
    if not targets:
        return False
    for o in targets:
        o.status, o.reason = "cancelled", reason
        o.version += 1
    await store.free_time(session, [o.id for o in targets])
    touch(view)
    publish(
        session, SessionCancelledV1, view, scope="following",
        occurrence_starts_at=targets[0].original_starts_at, reason=reason,
    )  # fmt: skip
    return True


async def _leave(session: AsyncSession, view: SessionView, external_id: str, reason: str) -> None:
    """A circle member leaves a group session: their future time is freed; the circle
    meets on, unless nobody but the mentor is left."""
    for p in view.participants:
        if p.external_id == external_id and p.active:
            p.active = False
            break
    else:
        return
    nobody_left = not any(p.active and p.role == "member" for p in view.participants)
    if nobody_left and await _cancel_future(session, view, reason):
        return
    now = utcnow()
    future = [o.id for o in view.occurrences if o.starts_at > now]
    if future:
        await session.execute(
            delete(Busy).where(Busy.occurrence_id.in_(future), Busy.external_id == external_id)
        )
    touch(view)
    publish(session, SessionRescheduledV1, view, scope="session", reason=reason)


async def _future_sessions(
    session: AsyncSession, org_id: uuid.UUID, *conditions: object
) -> list[SessionView]:
    now = utcnow()
    ids = (
        await session.scalars(
            select(Session.id)
            .where(Session.org_id == org_id, *conditions)  # type: ignore[arg-type]
            .where(
                select(Occurrence.id)
                .where(
                    Occurrence.session_id == Session.id,
                    Occurrence.status == "scheduled",
                    Occurrence.starts_at > now,
                )
                .exists()
            )
            .order_by(Session.id)
        )
    ).all()
    views = []
    for session_id in ids:
        view = await store.load(session, org_id, session_id, lock=True)
        if view is not None:
            views.append(view)
    return views


async def match_closed(
    session: AsyncSession,
    org_id: uuid.UUID,
    match_id: uuid.UUID,
    group_id: uuid.UUID | None,
    mentee: str | None,
    status: str,
) -> None:
    """A match ended or was declined: its sessions' future occurrences are cancelled; in
    a circle, that member leaves the circle's sessions."""
    reason = f"match {status}"
    for view in await _future_sessions(session, org_id, Session.match_id == match_id):
        await _cancel_future(session, view, reason)
    if group_id is not None and mentee:
        for view in await _future_sessions(session, org_id, Session.group_id == group_id):
            await _leave(session, view, mentee, reason)


async def people_offboarded(
    session: AsyncSession, org_id: uuid.UUID, external_ids: set[str]
) -> None:
    """Offboarded people's future sessions are cancelled: one statement finds who of them
    takes part in any session (in a bulk offboarding, few); only those are handled one by
    one."""
    taking_part = await session.scalars(
        select(SessionParticipant.external_id)
        .where(
            SessionParticipant.org_id == org_id,
            SessionParticipant.external_id.in_(external_ids),
            SessionParticipant.active,
        )
        .distinct()
    )
    for external_id in sorted(taking_part):
        await person_offboarded(session, org_id, external_id)


async def person_offboarded(session: AsyncSession, org_id: uuid.UUID, external_id: str) -> None:
    """An offboarded person's future sessions are cancelled (a circle member just leaves
    their circle's sessions)."""
    reason = "participant offboarded"
    taking_part = (
        select(SessionParticipant.session_id)
        .where(
            SessionParticipant.org_id == org_id,
            SessionParticipant.external_id == external_id,
            SessionParticipant.active,
        )
        .scalar_subquery()
    )
    for view in await _future_sessions(session, org_id, Session.id.in_(taking_part)):
        role = next(p.role for p in view.participants if p.external_id == external_id)
        if role == "member":
            await _leave(session, view, external_id, reason)
        else:
            await _cancel_future(session, view, reason)
