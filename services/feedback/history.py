"""Feedback's projection of each person's HRIS history (effective dating), the ground of
the outcome figures. No HTTP and no Kafka here.

A `person.*` event carries the dated state it recorded (`history_entry`): the person's
current state, or an older state that only joined the history. Entries are keyed by
(person, effective_date) and an entry is replaced only by a newer version of the person,
so redelivered and reordered events leave the same history."""

import uuid
from datetime import date

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
    return await upsert_newer(session, PersonHistory, values)
