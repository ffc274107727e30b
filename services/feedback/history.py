"""Feedback's projection of each person's HRIS history (effective dating), the ground of
the outcome figures. No HTTP and no Kafka here.

A `person.*` event carries the dated state it recorded (`history_entry`): the person's
current state, or an older state that only joined the history. Entries are keyed by
(person, effective_date) and an entry is replaced only by a newer version of the person,
so redelivered and reordered events leave the same history."""

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.models import PersonHistory
from shared.db import driver_connection, upsert_newer_many
from shared.events.people import PersonState


def history_row(org_id: uuid.UUID | str, person: PersonState, event_day: date) -> dict[str, Any]:
    """The dated state a person event recorded. An event without effective dating (an
    older producer) records its current state on the day of the event."""
    entry = person.history_entry
    values: dict[str, Any] = {
        "person_id": person.person_id,
        "org_id": org_id,
        "external_id": person.external_id,
        "version": person.version,
    }
    if entry is not None:
        return values | {
            "effective_date": entry.effective_date,
            "employment_status": entry.employment_status,
            "job_level": entry.job_level,
            "department": entry.department,
        }
    return values | {
        "effective_date": person.effective_date or event_day,
        "employment_status": person.employment_status,
        "job_level": person.job_level,
        "department": person.department,
    }


async def apply_history(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> set[uuid.UUID]:
    """Keep many dated states (`history_row`s, in any order, several per person allowed)
    in one version-guarded upsert, then re-derive the segments of the people whose history
    changed in one statement. Returns those people."""
    changed = {uuid.UUID(str(p)) for p in await upsert_newer_many(session, PersonHistory, [*rows])}
    if changed:
        conn = await driver_connection(session)
        await conn.execute(_SEGMENTS, list(changed))
    return changed


# The entries of some people, each with the date the next one took effect and the level
# before it: recomputed whole for each of them, so an entry arriving late (reordered) fixes
# its neighbours too. Driven person by person from the ids (LATERAL): index lookups whatever
# the table's statistics say. During a first sync they are stale (the table grows faster
# than autovacuum analyzes it), and the planner then scanned the whole table per batch.
_SEGMENTS = """
    UPDATE person_history AS h SET next_date = s.next_date, prev_job_level = s.prev_level
    FROM unnest($1::uuid[]) AS p(person_id)
    CROSS JOIN LATERAL (
        SELECT effective_date, lead(effective_date) OVER w AS next_date,
               lag(job_level) OVER w AS prev_level
        FROM person_history WHERE person_id = p.person_id
        WINDOW w AS (ORDER BY effective_date)
    ) AS s
    WHERE h.person_id = p.person_id AND h.effective_date = s.effective_date
      AND (h.next_date IS DISTINCT FROM s.next_date
           OR h.prev_job_level IS DISTINCT FROM s.prev_level)
"""
