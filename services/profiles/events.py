"""What profiles publishes (it consumes nothing)."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.profiles.models import Organization, Person
from shared.events import EventData, OrganizationCreatedV1, PersonDeactivatedV1, PersonUpsertedV1
from shared.events.people import PersonState
from shared.outbox import add_event

SOURCE = "mentorbus/profiles"


def publish(session: AsyncSession, org_id: uuid.UUID, data: EventData) -> None:
    """Stage an event in the current transaction."""
    add_event(session, data, source=SOURCE, orgid=org_id)


def organization_created(org: Organization) -> OrganizationCreatedV1:
    """The event for a new organization."""
    return OrganizationCreatedV1(organization_id=org.id, name=org.name)


def _person_state(person: Person) -> dict[str, object]:
    fields = PersonState.model_fields.keys() - {"person_id"}
    return {"person_id": person.id, **{f: getattr(person, f) for f in fields}}


def person_upserted(person: Person) -> PersonUpsertedV1:
    """Full state of a created or changed person."""
    return PersonUpsertedV1.model_validate(_person_state(person))


def person_deactivated(person: Person) -> PersonDeactivatedV1:
    """Full state of an offboarded person."""
    return PersonDeactivatedV1.model_validate(_person_state(person))
