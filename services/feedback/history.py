"""Feedback's projection of each person's HRIS history (effective dating), the ground of
the outcome figures. No HTTP and no Kafka here.

A `person.*` event carries the dated state it recorded (`history_entry`): the person's
current state, or an older state that only joined the history. Entries are keyed by
(person, effective_date) and an entry is replaced only by a newer version of the person,
so redelivered and reordered events leave the same history."""

import uuid
from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.models import PersonHistory
from shared.db import upsert_newer
from shared.events.people import PersonState


async def apply_person_history(
    session: AsyncSession, org_id: uuid.UUID, person: PersonState, event_day: date
) -> bool:
    """Keep the dated state a person event recorded. An event without effective dating
    (an older producer) records its current state on the day of the event."""
    entry = person.history_entry
    values = {
        "person_id": person.person_id,
        "org_id": org_id,
        "external_id": person.external_id,
        "version": person.version,
    }
    if entry is not None:
        values |= {
            "effective_date": entry.effective_date,
            "employment_status": entry.employment_status,
            "job_level": entry.job_level,
            "department": entry.department,
        }
    else:
        values |= {
            "effective_date": person.effective_date or event_day,
            "employment_status": person.employment_status,
            "job_level": person.job_level,
            "department": person.department,
        }
    changed = await upsert_newer(session, PersonHistory, values)
    if changed:
        await session.execute(_SEGMENTS, {"person_id": person.person_id})
    return changed


# A person's entries, each with the date the next one took effect and the level before it:
# recomputed whole for that person, so an entry arriving late (reordered) fixes its
# neighbours too.
_SEGMENTS = text(
    """
    UPDATE person_history AS h SET next_date = w.next_date, prev_job_level = w.prev_level
    FROM (
        SELECT effective_date,
               lead(effective_date) OVER w AS next_date, lag(job_level) OVER w AS prev_level
        FROM person_history WHERE person_id = :person_id
        WINDOW w AS (ORDER BY effective_date)
    ) AS w
    WHERE h.person_id = :person_id AND h.effective_date = w.effective_date
      AND (h.next_date IS DISTINCT FROM w.next_date
           OR h.prev_job_level IS DISTINCT FROM w.prev_level)
    """
)
