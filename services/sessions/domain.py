"""Sessions use cases. No HTTP and no Kafka here."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.sessions.models import PersonProjection
from shared.db import upsert_newer, utcnow
from shared.events.people import PersonState


async def apply_person(session: AsyncSession, org_id: uuid.UUID, person: PersonState) -> bool:
    """Keep who can be scheduled, and in which time zone; older versions are ignored."""
    return await upsert_newer(
        session,
        PersonProjection,
        {
            "id": person.person_id,
            "org_id": org_id,
            "external_id": person.external_id,
            "email": person.email,
            "display_name": person.display_name,
            "time_zone": person.time_zone,
            "employment_status": person.employment_status,
            "version": person.version,
            "updated_at": utcnow(),
        },
    )
