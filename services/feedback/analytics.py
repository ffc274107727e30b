"""Program analytics from this service's own projections: participation, engagement,
satisfaction (by month, with NPS) and goals, each figure with the counts it comes from.
No HTTP and no Kafka here.

Every figure is a query over tables that are themselves exact under redelivery and
reordering (version-guarded projections, one row per session occurrence, one answer per
request, and the daily rollups kept from them: see migration 0004), so the figures are
too. The window is whole UTC days and applies to when things happened: enrollments and
matches that overlap it, sessions held in it, answers given in it, goals set in it.
"""

import csv
import io
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)

DEFINITIONS = {
    "mentors": "enrollments as mentor (or both) that overlap the window",
    "mentees": "enrollments as mentee (or both) that overlap the window",
    "match_rate": "of those mentees, the share with a match that became active before the "
    "window's end",
    "median_days_to_match": "median days from a matched mentee's enrollment to their first "
    "match becoming active",
    "sessions_per_match": "completed session occurrences held in the window per match active "
    "during it",
    "cancellation_rate": "cancelled of all occurrences with an outcome (completed, no-show, "
    "cancelled) in the window",
    "no_show_rate": "no-shows of occurrences that were due (completed or no-show) in the window",
    "average_rating": "mean rating (1-5) of answers given in the window (session and end-of-match)",
    "nps": "end-of-match answers: promoters 9-10, passives 7-8, detractors 0-6; score = "
    "100 x (promoters - detractors) / responses",
    "goals": "goals set in the window; completed: of those, the ones completed",
}


def _rate(count: int, of: int) -> dict[str, Any]:
    return {"rate": round(count / of, 4) if of else None, "count": count, "of": of}


def _nps(promoters: int, passives: int, detractors: int) -> dict[str, Any]:
    responses = promoters + passives + detractors
    score = round(100 * (promoters - detractors) / responses, 1) if responses else None
    return {
        "score": score,
        "promoters": promoters,
        "passives": passives,
        "detractors": detractors,
        "responses": responses,
    }


def _average(total: int, count: int) -> dict[str, Any]:
    return {"value": round(total / count, 4) if count else None, "sum": total, "count": count}


_PARTICIPATION = text(
    """
    WITH enrolled AS (
        SELECT id, role, created_at FROM enrollment
        WHERE program_id = :program
          AND (created_at IS NULL OR created_at < :end)
          AND (withdrawn_at IS NULL OR withdrawn_at >= :start)
    ), first_match AS (
        -- An enrollment's first match to become active, on either side (peers are both).
        SELECT enrollment_id, min(activated_at) AS matched_at FROM (
            SELECT mentee_enrollment_id AS enrollment_id, activated_at FROM match
            WHERE program_id = :program AND activated_at < :end
            UNION ALL
            SELECT mentor_enrollment_id, activated_at FROM match
            WHERE program_id = :program AND activated_at < :end
        ) sides GROUP BY enrollment_id
    )
    -- One pass over the enrollments (a peer, role both, counts as mentor and as mentee).
    SELECT
        count(*) FILTER (WHERE e.role IN ('mentor', 'both')) AS mentors,
        count(*) FILTER (WHERE e.role IN ('mentee', 'both')) AS mentees,
        count(*) FILTER (WHERE e.role IN ('mentee', 'both') AND f.matched_at IS NOT NULL)
            AS matched,
        percentile_cont(0.5) WITHIN GROUP (
            ORDER BY extract(epoch FROM f.matched_at - e.created_at) / 86400)
            FILTER (WHERE e.role IN ('mentee', 'both') AND e.created_at IS NOT NULL)
            AS median_days,
        count(f.matched_at - e.created_at) FILTER (WHERE e.role IN ('mentee', 'both'))
            AS timed
    FROM enrolled e LEFT JOIN first_match f ON f.enrollment_id = e.id
    """
)

_ENGAGEMENT = text(
    """
    SELECT
        (SELECT count(*) FROM match
         WHERE program_id = :program AND activated_at < :end
           AND (ended_at IS NULL OR ended_at >= :start)) AS matches,
        coalesce(sum(occurrences) FILTER (WHERE status = 'completed'), 0) AS completed,
        coalesce(sum(occurrences) FILTER (WHERE status = 'no_show'), 0) AS no_show,
        coalesce(sum(occurrences) FILTER (WHERE status = 'cancelled'), 0) AS cancelled
    FROM session_daily
    WHERE program_id = :program AND day >= :start_day AND day < :end_day
    """
)

_SATISFACTION = text(
    """
    SELECT to_char(day, 'YYYY-MM') AS month, role,
           sum(ratings) AS ratings, sum(rating_sum) AS rating_sum,
           sum(promoters) AS promoters, sum(passives) AS passives,
           sum(detractors) AS detractors
    FROM feedback_daily
    WHERE program_id = :program AND day >= :start_day AND day < :end_day
    GROUP BY 1, 2 ORDER BY 1, 2
    """
)

_GOALS = text(
    """
    SELECT count(*) AS set, count(*) FILTER (WHERE status = 'completed') AS completed
    FROM goal
    WHERE program_id = :program AND created_at >= :start AND created_at < :end
    """
)


async def program_analytics(
    session: AsyncSession, program_id: uuid.UUID, first_day: date | None, last_day: date | None
) -> dict[str, Any]:
    """Every figure of a program from `first_day` to `last_day`, both included (UTC days;
    open-ended when None). The caller has checked the program is the caller's."""
    start_day = first_day or EARLIEST.date()
    end_day = last_day + timedelta(days=1) if last_day else LATEST.date()
    params = {
        "program": program_id,
        "start_day": start_day,
        "end_day": end_day,
        "start": datetime.combine(start_day, time(), UTC),
        "end": datetime.combine(end_day, time(), UTC),
    }
    p = (await session.execute(_PARTICIPATION, params)).one()
    e = (await session.execute(_ENGAGEMENT, params)).one()
    months = (await session.execute(_SATISFACTION, params)).all()
    g = (await session.execute(_GOALS, params)).one()
    return {
        "program_id": str(program_id),
        "from": first_day.isoformat() if first_day else None,
        "to": last_day.isoformat() if last_day else None,
        "participation": {
            "mentors": {"count": p.mentors},
            "mentees": {"count": p.mentees},
            "match_rate": _rate(p.matched, p.mentees),
            "median_days_to_match": {
                "value": round(float(p.median_days), 4) if p.median_days is not None else None,
                "count": p.timed,
            },
        },
        "engagement": {
            "matches": {"count": e.matches},
            "sessions_held": {"count": e.completed},
            "sessions_per_match": {
                "value": round(e.completed / e.matches, 4) if e.matches else None,
                "sessions": e.completed,
                "matches": e.matches,
            },
            "cancellation_rate": _rate(e.cancelled, e.completed + e.no_show + e.cancelled),
            "no_show_rate": _rate(e.no_show, e.completed + e.no_show),
        },
        "satisfaction": _satisfaction(months),
        "goals": {
            "set": {"count": g.set},
            "completed": {"count": g.completed},
            "completion_rate": _rate(g.completed, g.set),
        },
        "definitions": DEFINITIONS,
    }


def _satisfaction(rows: Sequence[Any]) -> dict[str, Any]:
    by_month: dict[str, list[int]] = {}
    by_role: dict[str, list[int]] = {}
    for row in rows:
        counts = [row.ratings, row.rating_sum, row.promoters, row.passives, row.detractors]
        for bucket, key in ((by_month, row.month), (by_role, row.role or "unknown")):
            totals = bucket.setdefault(key, [0, 0, 0, 0, 0])
            for i, value in enumerate(counts):
                totals[i] += int(value)
    overall = [sum(t[i] for t in by_month.values()) for i in range(5)]
    return {
        "average_rating": _average(overall[1], overall[0]),
        "nps": _nps(overall[2], overall[3], overall[4]),
        "average_rating_by_role": {
            role: _average(t[1], t[0]) for role, t in sorted(by_role.items())
        },
        "by_month": [
            {"month": month, "average_rating": _average(t[1], t[0]), "nps": _nps(t[2], t[3], t[4])}
            for month, t in sorted(by_month.items())
        ],
    }


def as_csv(figures: dict[str, Any]) -> str:
    """The same figures as CSV: one row per number, `figure,month,value` (`figure` is the
    dotted path in the JSON answer; `month` is set for the by-month figures)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["figure", "month", "value"])
    for section in ("participation", "engagement", "satisfaction", "goals"):
        for path, month, value in _leaves(figures[section], section, ""):
            writer.writerow([path, month, "" if value is None else value])
    return out.getvalue()


def _leaves(node: Any, path: str, month: str) -> list[tuple[str, str, Any]]:
    if isinstance(node, dict):
        found = []
        for key, value in node.items():
            if key == "month":
                continue
            found.extend(_leaves(value, f"{path}.{key}", month))
        return found
    if isinstance(node, list):
        found = []
        for item in node:
            found.extend(_leaves(item, path, str(item.get("month", "")) or month))
        return found
    return [(path, month, node)]


def json_bytes(figures: dict[str, Any]) -> bytes:
    """The figures as a JSON document."""
    return json.dumps(figures, separators=(",", ":")).encode()
