"""Outcome analytics of a program, computed only from feedback's own projections (person
history, matches, enrollments, tracks, agreements). No HTTP and no Kafka here.

The definitions below are the contract's ("Outcomes") made exact; each answer carries
them, with the counts behind every figure, so an analyst can check any number by hand."""

import csv
import io
import uuid
from datetime import date
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

# Set-based: the entry in effect on a day is the one row with effective_date <= day <
# next_date (kept by history.py), so no per-person grouping or window is needed here.
_PEOPLE = """
WITH participant_match AS (
    SELECT mentee_person_id, mentor_person_id, mentee_external_id, mentor_external_id
    FROM match
    WHERE org_id = :org AND program_id = :program
      AND (activated_at IS NOT NULL OR status IN ('active', 'completed'))
), participant_person AS (
    -- Matches carry person ids; an older match event without them is found by external id.
    SELECT x.person_id
    FROM participant_match AS m,
         LATERAL (VALUES (m.mentee_person_id), (m.mentor_person_id)) AS x (person_id)
    WHERE x.person_id IS NOT NULL
    UNION
    SELECT h.person_id
    FROM participant_match AS m
    JOIN person_history AS h ON h.org_id = :org AND h.external_id = m.mentee_external_id
    WHERE m.mentee_person_id IS NULL
    UNION
    SELECT h.person_id
    FROM participant_match AS m
    JOIN person_history AS h ON h.org_id = :org AND h.external_id = m.mentor_external_id
    WHERE m.mentor_person_id IS NULL
), at_start AS (
    SELECT person_id, external_id, department, employment_status <> 'inactive' AS employed
    FROM person_history
    WHERE org_id = :org AND effective_date <= :d0 AND (next_date IS NULL OR next_date > :d0)
), member AS (
    SELECT pp.person_id, 'participants' AS grp, coalesce(s.employed, false) AS at_start,
           s.department
    FROM participant_person AS pp LEFT JOIN at_start AS s USING (person_id)
    UNION ALL
    SELECT s.person_id, 'comparison', true, s.department
    FROM at_start AS s
    WHERE s.employed
      AND s.department IN (
          SELECT a.department FROM at_start AS a JOIN participant_person USING (person_id))
      AND s.person_id NOT IN (SELECT person_id FROM participant_person)
      AND s.external_id NOT IN (
          SELECT employee_external_id FROM enrollment
          WHERE org_id = :org AND program_id = :program)
), per_group AS (
    SELECT grp, count(*) AS people, count(*) FILTER (WHERE at_start) AS base,
           array_agg(DISTINCT department) FILTER (WHERE department IS NOT NULL) AS departments
    FROM member GROUP BY grp
), per_entry AS (
    SELECT m.grp,
           count(*) FILTER (WHERE m.at_start AND h.employment_status <> 'inactive'
                   AND h.effective_date <= :d3
                   AND (h.next_date IS NULL OR h.next_date > :d3)) AS kept_3,
           count(*) FILTER (WHERE m.at_start AND h.employment_status <> 'inactive'
                   AND h.effective_date <= :d6
                   AND (h.next_date IS NULL OR h.next_date > :d6)) AS kept_6,
           count(*) FILTER (WHERE m.at_start AND h.employment_status <> 'inactive'
                   AND h.effective_date <= :d12
                   AND (h.next_date IS NULL OR h.next_date > :d12)) AS kept_12,
           count(*) FILTER (WHERE h.effective_date BETWEEN :d0 AND :dend
                   AND h.job_level > h.prev_job_level) AS promotions,
           coalesce(sum(greatest(0, least(coalesce(h.next_date, :dend + 1), :dend + 1)
                   - greatest(h.effective_date, :d0)))
               FILTER (WHERE h.employment_status <> 'inactive'), 0)::bigint AS days
    FROM member AS m JOIN person_history AS h ON h.person_id = m.person_id
    GROUP BY m.grp
)
SELECT g.grp, g.people, g.base, e.kept_3, e.kept_6, e.kept_12, e.promotions, e.days,
       g.departments
FROM per_group AS g JOIN per_entry AS e USING (grp)
"""

_MATCH_DEPARTMENTS = """
WITH m AS (
    SELECT id, mentee_external_id, mentor_external_id,
           coalesce((activated_at AT TIME ZONE 'UTC')::date, :today) AS day
    FROM match
    WHERE org_id = :org AND program_id = :program
      AND (activated_at IS NOT NULL OR status IN ('active', 'completed'))
)
SELECT m.id, mentee.department AS mentee_department, mentor.department AS mentor_department
FROM m
LEFT JOIN person_history AS mentee
       ON mentee.org_id = :org AND mentee.external_id = m.mentee_external_id
      AND mentee.effective_date <= m.day
      AND (mentee.next_date IS NULL OR mentee.next_date > m.day)
LEFT JOIN person_history AS mentor
       ON mentor.org_id = :org AND mentor.external_id = m.mentor_external_id
      AND mentor.effective_date <= m.day
      AND (mentor.next_date IS NULL OR mentor.next_date > m.day)
"""

# Every (match, module) of the program's tracks with the completions its steps need; a
# module is done when all are there, at the latest of them.
_TRACKS = """
WITH assigned AS (
    SELECT match_id, track_id, version, started_on, completed_at
    FROM match_track WHERE org_id = :org AND program_id = :program
), needed AS (
    SELECT tv.track_id, tv.version, module.ord AS module, step ->> 'id' AS step_id, role
    FROM track_version AS tv
    JOIN (SELECT DISTINCT track_id, version FROM assigned) AS used USING (track_id, version)
    CROSS JOIN LATERAL jsonb_array_elements(tv.modules) WITH ORDINALITY AS module (body, ord)
    CROSS JOIN LATERAL jsonb_array_elements(module.body -> 'steps') AS step
    CROSS JOIN LATERAL unnest(CASE step ->> 'completed_by'
        WHEN 'both' THEN ARRAY['mentee', 'mentor'] ELSE ARRAY[step ->> 'completed_by'] END)
        AS role
), modules AS (
    SELECT a.match_id, a.started_on, n.module, max(c.completed_at) AS done_at,
           bool_and(c.completed_at IS NOT NULL) AS done
    FROM assigned AS a
    JOIN needed AS n USING (track_id, version)
    LEFT JOIN step_completion AS c
           ON c.match_id = a.match_id AND c.step_id = n.step_id AND c.role = n.role
    GROUP BY a.match_id, a.started_on, n.module
), timed AS (
    SELECT done, done_at,
           coalesce(lag(CASE WHEN done THEN done_at END)
                        OVER (PARTITION BY match_id ORDER BY module),
                    'infinity') AS previous_done,
           started_on::timestamp AT TIME ZONE 'UTC' AS started_at
    FROM modules
)
SELECT (SELECT count(*) FROM assigned) AS with_track,
       (SELECT count(*) FROM assigned WHERE completed_at IS NOT NULL) AS completed,
       count(*) FILTER (WHERE done) AS modules_completed,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY greatest(0, extract(epoch FROM done_at
           - CASE WHEN previous_done < done_at THEN previous_done ELSE started_at END)
           / 86400.0)) FILTER (WHERE done)::float8 AS median_days
FROM timed
"""

_AGREEMENTS = """
SELECT count(*) AS drafted,
       count(*) FILTER (WHERE status = 'signed') AS signed,
       percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM signed_at - created_at) / 86400.0
       ) FILTER (WHERE status = 'signed')::float8 AS median_days
FROM agreement WHERE org_id = :org AND program_id = :program
"""


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


async def _tracks(session: AsyncSession, params: dict[str, Any]) -> dict[str, Any]:
    row = (await session.execute(text(_TRACKS), params)).one()
    return {
        "completion_rate": round(row.completed / row.with_track, 4) if row.with_track else None,
        "completed": row.completed,
        "with_track": row.with_track,
        "median_days_per_module": _round(row.median_days),
        "modules_completed": row.modules_completed,
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
