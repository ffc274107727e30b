"""What sessions consumes (it will publish `session.*`)."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.sessions import domain
from shared.consumer import Handler, batched
from shared.events import CloudEvent, EventData, PersonDeactivatedV1, PersonUpsertedV1
from shared.events.people import PersonState


async def on_person(session: AsyncSession, event: CloudEvent, person: PersonState) -> None:
    """A person changed or left: update who can be scheduled."""
    await domain.apply_person(session, uuid.UUID(event.orgid), person)


HANDLERS: dict[type[EventData], Handler] = {
    PersonUpsertedV1: batched(domain.apply_people),
    PersonDeactivatedV1: batched(domain.apply_people),
}
