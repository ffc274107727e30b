"""Feedback use cases. No HTTP and no Kafka here."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.models import PersonProjection
from shared.db import upsert_newer, utcnow
from shared.events.people import PersonState


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
