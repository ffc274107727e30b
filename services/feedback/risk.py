"""Matches at risk: active matches of a program with the reasons they need attention.

Each reason is a rule: an async function that, given the program's active matches, returns
a `Reason` for each match it flags. `RISK_RULES` lists them; a module adds its own with the
`risk_rule` decorator (tracks add unsigned agreements and overdue steps this way). No HTTP
and no Kafka here.
"""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.models import MatchProjection
from services.feedback.settings import FeedbackSettings


class ActiveMatch(NamedTuple):
    """What the rules and the answer need of an active match (plain rows: a program may
    have ten thousand, and ORM objects for each cost more than every rule together)."""

    id: uuid.UUID
    group_id: uuid.UUID | None
    activated_at: datetime | None
    mentee_external_id: str | None
    mentor_external_id: str | None


@dataclass(frozen=True)
class Reason:
    """Why a match needs attention: a stable `code` and a sentence for people."""

    code: str
    detail: str


@dataclass(frozen=True)
class RiskContext:
    """What every rule may look at: the program's active matches, now, the thresholds."""

    org_id: uuid.UUID
    program_id: uuid.UUID
    now: datetime
    settings: FeedbackSettings
    matches: list[ActiveMatch] = field(default_factory=list)

    @property
    def match_ids(self) -> list[uuid.UUID]:
        """The ids of the matches under consideration."""
        return [m.id for m in self.matches]


RiskRule = Callable[[AsyncSession, RiskContext], Awaitable[dict[uuid.UUID, Reason]]]

RISK_RULES: list[RiskRule] = []


def risk_rule(rule: RiskRule) -> RiskRule:
    """Register a rule (decorator): `GET /v1/programs/{id}/at-risk` asks every one."""
    RISK_RULES.append(rule)
    return rule


@dataclass(frozen=True)
class AtRisk:
    """A match and every reason it is at risk."""

    match: ActiveMatch
    reasons: list[Reason]


async def at_risk(
    session: AsyncSession,
    org_id: uuid.UUID,
    program_id: uuid.UUID,
    settings: FeedbackSettings,
    now: datetime,
) -> list[AtRisk]:
    """The program's active matches that at least one rule flags, by match id."""
    query = (
        select(
            MatchProjection.id,
            MatchProjection.group_id,
            MatchProjection.activated_at,
            MatchProjection.mentee_external_id,
            MatchProjection.mentor_external_id,
        )
        .where(
            MatchProjection.org_id == org_id,
            MatchProjection.program_id == program_id,
            MatchProjection.status == "active",
        )
        .order_by(MatchProjection.id)
    )
    matches = [ActiveMatch(*row) for row in await session.execute(query)]
    context = RiskContext(org_id, program_id, now, settings, matches)
    found: dict[uuid.UUID, list[Reason]] = {}
    if matches:
        for rule in RISK_RULES:
            for match_id, reason in (await rule(session, context)).items():
                found.setdefault(match_id, []).append(reason)
    return [AtRisk(m, found[m.id]) for m in matches if m.id in found]


# Two index lookups per match (its own sessions; its circle's), only for matches active
# long enough to judge.
_LAST_SESSION = text(
    """
    SELECT m.id, m.activated_at, greatest(
        (SELECT max(o.held_at) FROM session_occurrence o
         WHERE o.match_id = m.id AND o.status = 'completed' AND o.held_at <= :now),
        (SELECT max(o.held_at) FROM session_occurrence o
         WHERE m.group_id IS NOT NULL AND o.group_id = m.group_id
           AND o.status = 'completed' AND o.held_at <= :now)
    ) AS last_held_at
    FROM match m WHERE m.id = ANY(:ids) AND m.activated_at <= :cutoff
    """
)


@risk_rule
async def no_recent_session(session: AsyncSession, context: RiskContext) -> dict[uuid.UUID, Reason]:
    """No completed session in the last N days (default 30), for a match active that long."""
    days = context.settings.at_risk_no_session_days
    cutoff = context.now - timedelta(days=days)
    rows = await session.execute(
        _LAST_SESSION, {"ids": context.match_ids, "now": context.now, "cutoff": cutoff}
    )
    flagged = {}
    for match_id, _, last_held_at in rows:
        if last_held_at is None or last_held_at < cutoff:
            since = f"since {last_held_at:%Y-%m-%d}" if last_held_at else "ever"
            flagged[match_id] = Reason(
                "no_session_30_days" if days == 30 else f"no_session_{days}_days",
                f"no session in {days} days (none held {since})",
            )
    return flagged


_LATEST_CHECKIN = text(
    """
    SELECT DISTINCT ON (match_id) match_id, rating, employee_external_id, created_at
    FROM checkin WHERE match_id = ANY(:ids)
    ORDER BY match_id, created_at DESC, id DESC
    """
)


@risk_rule
async def low_checkin(session: AsyncSession, context: RiskContext) -> dict[uuid.UUID, Reason]:
    """The latest check-in rated at or below the threshold (default 2 of 5)."""
    threshold = context.settings.at_risk_low_checkin_rating
    rows = await session.execute(_LATEST_CHECKIN, {"ids": context.match_ids})
    return {
        match_id: Reason(
            "low_check_in", f"latest check-in rated {rating}/5 by {who} on {at:%Y-%m-%d}"
        )
        for match_id, rating, who, at in rows
        if rating <= threshold
    }


_FEEDBACK_AVERAGE = text(
    """
    SELECT match_id, rating_sum::float / ratings, ratings FROM match_feedback
    WHERE match_id = ANY(:ids) AND ratings > 0
    """
)


@risk_rule
async def low_feedback(session: AsyncSession, context: RiskContext) -> dict[uuid.UUID, Reason]:
    """The match's feedback averages at or below the threshold (default 2.5 of 5)."""
    threshold = context.settings.at_risk_low_feedback_rating
    rows = await session.execute(_FEEDBACK_AVERAGE, {"ids": context.match_ids})
    return {
        match_id: Reason("low_feedback", f"feedback averages {average:.1f}/5 over {count} answers")
        for match_id, average, count in rows
        if average <= threshold
    }
