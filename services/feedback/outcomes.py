"""Outcome analytics of a program, computed only from feedback's own projections (person
history, matches, enrollments, tracks, agreements). No HTTP and no Kafka here.

The definitions below are the contract's ("Outcomes") made exact; each answer carries
them, with the counts behind every figure, so an analyst can check any number by hand."""

import csv
import io
import statistics
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import networkx as nx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.projections import existing_program
from shared.errors import Conflict

RETENTION_MONTHS = (3, 6, 12)
DAYS_PER_YEAR = 365.25

DEFINITIONS = {
    "employed": "A person is employed on a day when their HRIS state in effect that day "
    "(the history entry with the latest effective_date on or before it) has "
    "employment_status active or leave; before their first entry they are not employed.",
    "participants": "People with a match in the program that became active (mentee or "
    "mentor), whose history this service holds.",
    "comparison": "People never enrolled in the program (any role or status), employed on "
    "its starts_on, whose department on starts_on is one that a participant had on "
    "starts_on.",
    "retention": "months_N: of the group's people employed on starts_on (of), how many are "
    "employed on starts_on + N months (count); rate = count / of. Present only once that "
    "date has passed.",
    "promotions": "count: job_level increases (an entry whose job_level is above the "
    "previous entry's) with effective_date between starts_on and the window end (ends_on, "
    "or today if earlier or unset), both included; person_years: days employed within that "
    "window, summed over the group, / 365.25; per_100_person_years = 100 * count / "
    "person_years.",
    "network": "Activated matches whose mentee's and mentor's departments (each as of the "
    "day the match became active) are both known: cross_department_match_share = those "
    "with different departments / all of them. departments_linked: departments that a "
    "cross-department match connects (nodes of degree >= 1 in the graph of departments "
    "with an edge per department pair matched); largest_linked_group: the largest "
    "connected set of departments in that graph.",
    "tracks": "completion_rate: matches of the program with a track whose every step is "
    "done / matches with a track. median_days_per_module: over every completed module "
    "(all its steps done), days from the later of the track's start and the previous "
    "module's completion (when that came first) to the module's completion.",
    "agreements": "signed_share: agreements signed by both participants (current version) "
    "/ agreements drafted. median_days_to_sign: days from the draft (made when the match "
    "became active) to the second signature, over signed agreements.",
}

_PEOPLE = """
WITH h AS (
    SELECT person_id, external_id, effective_date, job_level, department,
           employment_status <> 'inactive' AS employed,
           lead(effective_date) OVER w AS next_date,
           lag(job_level) OVER w AS prev_level
    FROM person_history WHERE org_id = :org
    WINDOW w AS (PARTITION BY person_id ORDER BY effective_date)
), p AS (
    SELECT person_id, min(external_id) AS external_id,
           bool_or(employed AND effective_date <= :d0
                   AND (next_date IS NULL OR next_date > :d0)) AS at_start,
           max(department) FILTER (WHERE effective_date <= :d0
                   AND (next_date IS NULL OR next_date > :d0)) AS dept_start,
           bool_or(employed AND effective_date <= :d3
                   AND (next_date IS NULL OR next_date > :d3)) AS at_3,
           bool_or(employed AND effective_date <= :d6
                   AND (next_date IS NULL OR next_date > :d6)) AS at_6,
           bool_or(employed AND effective_date <= :d12
                   AND (next_date IS NULL OR next_date > :d12)) AS at_12,
           count(*) FILTER (WHERE effective_date BETWEEN :d0 AND :dend
                   AND job_level > prev_level) AS promotions,
           coalesce(sum(greatest(0, least(coalesce(next_date, :dend + 1), :dend + 1)
                   - greatest(effective_date, :d0))) FILTER (WHERE employed), 0) AS days
    FROM h GROUP BY person_id
), participant AS (
    SELECT DISTINCT x.external_id
    FROM match AS m,
         LATERAL (VALUES (m.mentee_external_id), (m.mentor_external_id)) AS x (external_id)
    WHERE m.org_id = :org AND m.program_id = :program AND x.external_id IS NOT NULL
      AND (m.activated_at IS NOT NULL OR m.status IN ('active', 'completed'))
), participant_dept AS (
    SELECT DISTINCT p.dept_start FROM p JOIN participant USING (external_id)
    WHERE p.dept_start IS NOT NULL
), g AS (
    SELECT CASE
               WHEN p.external_id IN (SELECT external_id FROM participant) THEN 'participants'
               WHEN p.at_start AND p.dept_start IN (SELECT dept_start FROM participant_dept)
                    AND p.external_id NOT IN (
                        SELECT employee_external_id FROM enrollment
                        WHERE org_id = :org AND program_id = :program)
               THEN 'comparison'
           END AS grp,
           p.*
    FROM p
)
SELECT grp, count(*) AS people,
       count(*) FILTER (WHERE at_start) AS base,
       count(*) FILTER (WHERE at_start AND at_3) AS kept_3,
       count(*) FILTER (WHERE at_start AND at_6) AS kept_6,
       count(*) FILTER (WHERE at_start AND at_12) AS kept_12,
       coalesce(sum(promotions), 0)::bigint AS promotions,
       coalesce(sum(days), 0)::bigint AS days,
       array_agg(DISTINCT dept_start) FILTER (WHERE dept_start IS NOT NULL) AS departments
FROM g WHERE grp IS NOT NULL GROUP BY grp
"""

_MATCH_DEPARTMENTS = """
WITH m AS (
    SELECT id, mentee_external_id, mentor_external_id,
           coalesce((activated_at AT TIME ZONE 'UTC')::date, :today) AS day
    FROM match
    WHERE org_id = :org AND program_id = :program
      AND (activated_at IS NOT NULL OR status IN ('active', 'completed'))
)
SELECT m.id,
       (SELECT department FROM person_history AS h
        WHERE h.org_id = :org AND h.external_id = m.mentee_external_id
          AND h.effective_date <= m.day
        ORDER BY h.effective_date DESC LIMIT 1) AS mentee_department,
       (SELECT department FROM person_history AS h
        WHERE h.org_id = :org AND h.external_id = m.mentor_external_id
          AND h.effective_date <= m.day
        ORDER BY h.effective_date DESC LIMIT 1) AS mentor_department
FROM m
"""

_TRACKS = """
SELECT mt.match_id, mt.started_on, mt.completed_at, tv.modules,
       (SELECT coalesce(jsonb_agg(jsonb_build_array(c.step_id, c.role, c.completed_at)), '[]')
        FROM step_completion AS c WHERE c.match_id = mt.match_id) AS completions
FROM match_track AS mt
JOIN track_version AS tv ON tv.track_id = mt.track_id AND tv.version = mt.version
WHERE mt.org_id = :org AND mt.program_id = :program
"""

_AGREEMENTS = """
SELECT count(*) AS drafted,
       count(*) FILTER (WHERE status = 'signed') AS signed,
       percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM signed_at - created_at) / 86400.0
       ) FILTER (WHERE status = 'signed')::float8 AS median_days
FROM agreement WHERE org_id = :org AND program_id = :program
"""

_ROLES_OF = {"mentee": {"mentee"}, "mentor": {"mentor"}, "both": {"mentee", "mentor"}}


def add_months(day: date, months: int) -> date:
    """`day` plus whole months, clamped to the month's last day (Jan 31 + 1 = Feb 28)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _rate(count: int, of: int) -> dict[str, Any]:
    return {"rate": round(count / of, 4) if of else None, "count": count, "of": of}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


async def program_outcomes(
    session: AsyncSession, org_id: uuid.UUID, program_id: uuid.UUID, today: date
) -> dict[str, Any]:
    """Every outcome figure of a program as of `today` (see `DEFINITIONS`)."""
    program = await existing_program(session, org_id, program_id)
    if program.starts_on is None:
        raise Conflict(f"program {program_id} has no starts_on: outcomes count from it")
    start = program.starts_on
    end = min(today, program.ends_on) if program.ends_on else today
    params = {
        "org": org_id,
        "program": program_id,
        "d0": start,
        "d3": add_months(start, 3),
        "d6": add_months(start, 6),
        "d12": add_months(start, 12),
        "dend": end,
        "today": today,
    }
    groups = {row.grp: row for row in (await session.execute(text(_PEOPLE), params)).all()}
    empty = {"people": 0, "base": 0, "promotions": 0, "days": 0, "departments": None}
    empty |= {f"kept_{n}": 0 for n in RETENTION_MONTHS}

    def figures(name: str) -> dict[str, Any]:
        row = groups.get(name)
        return dict(row._mapping) if row is not None else empty

    by_group = {name: figures(name) for name in ("participants", "comparison")}
    retention = {
        f"months_{n}": {name: _rate(g[f"kept_{n}"], g["base"]) for name, g in by_group.items()}
        for n in RETENTION_MONTHS
        if add_months(start, n) <= today
    }
    promotions = {}
    for name, g in by_group.items():
        person_years = g["days"] / DAYS_PER_YEAR
        promotions[name] = {
            "per_100_person_years": _round(100 * g["promotions"] / person_years)
            if person_years
            else None,
            "count": g["promotions"],
            "person_years": round(person_years, 4),
        }
    return {
        "program_id": program_id,
        "as_of": today,
        "window": {"starts_on": start, "ends_on": end},
        "groups": {
            name: {"count": g["people"], "departments": sorted(g["departments"] or [])}
            for name, g in by_group.items()
        },
        "retention": retention,
        "promotions": promotions,
        "network": await _network(session, params),
        "tracks": await _tracks(session, params),
        "agreements": await _agreements(session, params),
        "definitions": DEFINITIONS,
    }


async def _network(session: AsyncSession, params: dict[str, Any]) -> dict[str, Any]:
    rows = (await session.execute(text(_MATCH_DEPARTMENTS), params)).all()
    known = [r for r in rows if r.mentee_department and r.mentor_department]
    graph = nx.Graph()
    graph.add_nodes_from(
        {r.mentee_department for r in known} | {r.mentor_department for r in known}
    )
    cross = [r for r in known if r.mentee_department != r.mentor_department]
    graph.add_edges_from((r.mentee_department, r.mentor_department) for r in cross)
    linked = [d for d, degree in graph.degree() if degree > 0]
    components = [len(c) for c in nx.connected_components(graph) if len(c) > 1]
    return {
        "cross_department_match_share": round(len(cross) / len(known), 4) if known else None,
        "cross_department_matches": len(cross),
        "matches_with_departments": len(known),
        "matches": len(rows),
        "departments_linked": len(linked),
        "departments": graph.number_of_nodes(),
        "department_pairs": graph.number_of_edges(),
        "largest_linked_group": max(components, default=0),
    }


def _module_days(
    started_on: date, modules: list[dict[str, Any]], done: dict[str, Any]
) -> list[float]:
    """Days each completed module took (see DEFINITIONS["tracks"])."""
    start = datetime(started_on.year, started_on.month, started_on.day, tzinfo=UTC)
    previous: datetime | None = None
    days = []
    for module in modules:
        finished: datetime | None = None
        for step in module["steps"]:
            times = done.get(step["id"], {})
            if not _ROLES_OF[step["completed_by"]] <= times.keys():
                finished = None
                break
            last = max(times[r] for r in _ROLES_OF[step["completed_by"]])
            finished = last if finished is None or last > finished else finished
        if finished is not None:
            since = previous if previous is not None and previous < finished else start
            days.append(max(0.0, (finished - since) / timedelta(days=1)))
        previous = finished
    return days


async def _tracks(session: AsyncSession, params: dict[str, Any]) -> dict[str, Any]:
    rows = (await session.execute(text(_TRACKS), params)).all()
    module_days: list[float] = []
    completed = 0
    for row in rows:
        completed += row.completed_at is not None
        done: dict[str, dict[str, datetime]] = {}
        for step_id, role, at in row.completions:
            done.setdefault(step_id, {})[role] = datetime.fromisoformat(at)
        module_days += _module_days(row.started_on, row.modules, done)
    return {
        "completion_rate": round(completed / len(rows), 4) if rows else None,
        "completed": completed,
        "with_track": len(rows),
        "median_days_per_module": _round(statistics.median(module_days)) if module_days else None,
        "modules_completed": len(module_days),
    }


async def _agreements(session: AsyncSession, params: dict[str, Any]) -> dict[str, Any]:
    row = (await session.execute(text(_AGREEMENTS), params)).one()
    return {
        "signed_share": round(row.signed / row.drafted, 4) if row.drafted else None,
        "signed": row.signed,
        "drafted": row.drafted,
        "median_days_to_sign": _round(row.median_days),
    }


def as_csv(figures: dict[str, Any]) -> str:
    """The figures as CSV rows: section, figure, group, value, count, of."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "figure", "group", "value", "count", "of"])
    for horizon, groups in figures["retention"].items():
        for name, f in groups.items():
            writer.writerow(["retention", horizon, name, f["rate"], f["count"], f["of"]])
    for name, f in figures["promotions"].items():
        writer.writerow(
            [
                "promotions",
                "per_100_person_years",
                name,
                f["per_100_person_years"],
                f["count"],
                f["person_years"],
            ]
        )
    net = figures["network"]
    writer.writerow(
        [
            "network",
            "cross_department_match_share",
            "",
            net["cross_department_match_share"],
            net["cross_department_matches"],
            net["matches_with_departments"],
        ]
    )
    writer.writerow(
        [
            "network",
            "departments_linked",
            "",
            net["departments_linked"],
            net["departments_linked"],
            net["departments"],
        ]
    )
    tr = figures["tracks"]
    writer.writerow(
        ["tracks", "completion_rate", "", tr["completion_rate"], tr["completed"], tr["with_track"]]
    )
    writer.writerow(
        [
            "tracks",
            "median_days_per_module",
            "",
            tr["median_days_per_module"],
            tr["modules_completed"],
            "",
        ]
    )
    ag = figures["agreements"]
    writer.writerow(
        ["agreements", "signed_share", "", ag["signed_share"], ag["signed"], ag["drafted"]]
    )
    writer.writerow(
        ["agreements", "median_days_to_sign", "", ag["median_days_to_sign"], ag["signed"], ""]
    )
    return out.getvalue()
