"""Matching use cases. No HTTP and no Kafka here."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.matching.models import PersonProjection
from shared.db import upsert_newer, utcnow
from shared.events.people import PersonState

# Only these leave the candidate pool's HRIS state; everything else is kept as is.
PROJECTED_FIELDS = (
    "external_id", "department", "division", "title", "time_zone", "languages",
    "manager_external_id", "hire_date", "employment_status", "attributes", "version",
)  # fmt: skip


async def apply_person(session: AsyncSession, org_id: uuid.UUID, person: PersonState) -> bool:
    """Project a person's latest state; older versions are ignored."""
    values = {f: getattr(person, f) for f in PROJECTED_FIELDS}
    values.update(id=person.person_id, org_id=org_id, updated_at=utcnow())
    return await upsert_newer(session, PersonProjection, values)
