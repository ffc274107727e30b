"""Goals: a mentee's SMART goals within a match, with milestones, progress and the
history of every change. No HTTP and no Kafka here."""

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.models import Goal, GoalUpdate, MatchProjection
from services.feedback.projections import visible_match
from shared.db import utcnow
from shared.errors import Conflict, NotFound
from shared.events.feedback import GoalCompletedV1, GoalCreatedV1, GoalState, GoalUpdatedV1
from shared.identity import Caller
from shared.outbox import add_event
from shared.pagination import CreatedAfter
from shared.preconditions import Precondition, check

SOURCE = "mentorbus/feedback"

# Fields a goal's history records, as they became.
TRACKED = (
    "title", "description", "measure", "target_date", "milestones", "status", "progress",
)  # fmt: skip


def _normalise(values: dict[str, Any]) -> dict[str, Any]:
    """Completing a goal means full progress; full progress alone does not complete it."""
    if values.get("status") == "completed":
        values["progress"] = 100
    return values


async def create_goal(session: AsyncSession, caller: Caller, values: dict[str, Any]) -> Goal:
    """Set a goal for the mentee of an active or proposed match (409 once it is over)."""
    match = await visible_match(session, caller, values["match_id"])
    if match.status not in {"active", "proposed"}:
        raise Conflict(f"match {match.id} is {match.status}: goals are set while it runs")
    now = utcnow()
    fields = _normalise({k: values[k] for k in TRACKED})
    goal = Goal(
        id=uuid.uuid4(),
        org_id=match.org_id,
        match_id=match.id,
        program_id=match.program_id,
        mentee_external_id=match.mentee_external_id,
        version=1,
        created_at=now,
        updated_at=now,
        completed_at=now if fields["status"] == "completed" else None,
        **fields,
    )
    session.add(goal)
    await session.flush()
    _history(session, goal, fields, caller)
    add_event(session, _state(GoalCreatedV1, goal), source=SOURCE, orgid=goal.org_id)
    if goal.status == "completed":
        add_event(session, _state(GoalCompletedV1, goal), source=SOURCE, orgid=goal.org_id)
    return goal


async def visible_goal(
    session: AsyncSession, caller: Caller, goal_id: uuid.UUID, *, lock: bool = False
) -> Goal:
    """A goal of a match the caller may see; 404 otherwise."""
    query = select(Goal).where(Goal.id == goal_id, Goal.org_id == caller.org_id)
    if lock:
        query = query.with_for_update()
    goal = (await session.scalars(query)).first()
    if goal is None:
        raise NotFound(f"goal {goal_id} not found")
    if caller.is_member:
        match = await session.get(MatchProjection, goal.match_id)
        if match is None or caller.subject not in match.participants():
            raise NotFound(f"goal {goal_id} not found")
    return goal


async def update_goal(
    session: AsyncSession,
    caller: Caller,
    goal_id: uuid.UUID,
    changes: dict[str, Any],
    precondition: Precondition | None,
) -> Goal:
    """Change a goal (only the fields sent), guarded by `If-Match`; each real change is a
    new version with its history entry and a `goal.updated` (and `goal.completed` when it
    reaches completed)."""
    goal = await visible_goal(session, caller, goal_id, lock=True)
    check(precondition, goal.version, f"goal {goal_id}")
    changes = _normalise(dict(changes))
    changed = {k: v for k, v in changes.items() if getattr(goal, k) != v}
    if not changed:
        return goal
    was_completed = goal.status == "completed"
    for key, value in changed.items():
        setattr(goal, key, value)
    now = utcnow()
    goal.version += 1
    goal.updated_at = now
    if goal.status == "completed" and not was_completed:
        goal.completed_at = now
    elif goal.status != "completed":
        goal.completed_at = None
    await session.flush()
    _history(session, goal, changed, caller)
    add_event(session, _state(GoalUpdatedV1, goal), source=SOURCE, orgid=goal.org_id)
    if goal.status == "completed" and not was_completed:
        add_event(session, _state(GoalCompletedV1, goal), source=SOURCE, orgid=goal.org_id)
    return goal


def _history(session: AsyncSession, goal: Goal, changed: dict[str, Any], caller: Caller) -> None:
    session.add(
        GoalUpdate(
            goal_id=goal.id,
            version=goal.version,
            changes={k: _plain(v) for k, v in changed.items()},
            changed_by=caller.subject,
            changed_at=goal.updated_at,
        )
    )


def _plain(value: Any) -> Any:
    # Dates as ISO text in the JSON history.
    return value.isoformat() if hasattr(value, "isoformat") else value


async def history(session: AsyncSession, goal_id: uuid.UUID) -> list[GoalUpdate]:
    """Every change of a goal, oldest first."""
    query = select(GoalUpdate).where(GoalUpdate.goal_id == goal_id).order_by(GoalUpdate.version)
    return list((await session.scalars(query)).all())


@dataclass(frozen=True)
class GoalFilter:
    """Which goals a list shows."""

    match_id: uuid.UUID | None = None
    program_id: uuid.UUID | None = None
    status: str | None = None
    mentee: str | None = None


async def list_goals(
    session: AsyncSession,
    caller: Caller,
    where: GoalFilter,
    after: CreatedAfter | None,
    limit: int,
) -> list[Goal]:
    """Goals of the organization (a member: of their matches), oldest first."""
    assert caller.org_id is not None
    query = select(Goal).where(Goal.org_id == caller.org_id)
    if where.match_id is not None:
        await visible_match(session, caller, where.match_id)
        query = query.where(Goal.match_id == where.match_id)
    if caller.is_member:
        theirs = select(MatchProjection.id).where(
            MatchProjection.org_id == caller.org_id,
            or_(
                MatchProjection.mentee_external_id == caller.subject,
                MatchProjection.mentor_external_id == caller.subject,
            ),
        )
        query = query.where(Goal.match_id.in_(theirs))
    if where.program_id is not None:
        query = query.where(Goal.program_id == where.program_id)
    if where.status is not None:
        query = query.where(Goal.status == where.status)
    if where.mentee is not None:
        query = query.where(Goal.mentee_external_id == where.mentee)
    if after is not None:
        query = query.where(tuple_(Goal.created_at, Goal.id) > after)
    query = query.order_by(Goal.created_at, Goal.id).limit(limit)
    return list((await session.scalars(query)).all())


def _state(event: type[GoalState], goal: Goal) -> GoalState:
    return event(
        goal_id=goal.id,
        version=goal.version,
        match_id=goal.match_id,
        program_id=goal.program_id,
        mentee_external_id=goal.mentee_external_id,
        title=goal.title,
        description=goal.description,
        measure=goal.measure,
        target_date=goal.target_date,
        milestones=goal.milestones,
        status=goal.status,
        progress=goal.progress,
    )
