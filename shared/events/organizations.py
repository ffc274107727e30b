"""Organization (tenant) events."""

import uuid

from shared.events.envelope import EventData, register
from shared.events.topics import Topic


@register
class OrganizationCreatedV1(EventData):
    """A new tenant exists."""

    event_type = "mentorbus.organization.created.v1"
    topic = Topic.ORGANIZATIONS

    organization_id: uuid.UUID
    name: str

    def aggregate_id(self) -> str:
        return str(self.organization_id)
