"""Feedback use cases. No HTTP and no Kafka here."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.models import PersonProjection
from shared.db import upsert_newer, upsert_newer_many, utcnow
from shared.events import CloudEvent
from shared.events.people import PersonState

_PERSON_FIELDS = ("external_id", "display_name", "employment_status", "version")


async def apply_people(session: AsyncSession, events: list[tuple[CloudEvent, PersonState]]) -> None:
    """A batch of person events in one version-guarded statement (older ones ignored)."""
    now = utcnow()
    rows = [
        {"id": p.person_id, "org_id": e.orgid, **{f: getattr(p, f) for f in _PERSON_FIELDS}}
        | {"updated_at": now}
        for e, p in events
    ]
    await upsert_newer_many(session, PersonProjection, rows)


async def apply_person(session: AsyncSession, org_id: uuid.UUID, person: PersonState) -> bool:
    """Keep who may be asked for feedback; older versions are ignored."""
    values = {
        "id": person.person_id,
        "org_id": org_id,
        "external_id": person.external_id,
        "display_name": person.display_name,
        "employment_status": person.employment_status,
        "version": person.version,
        "updated_at": utcnow(),
    }
    return await upsert_newer(session, PersonProjection, values)
