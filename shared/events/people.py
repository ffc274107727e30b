"""Person (HRIS employee) events, carrying full state so consumers never call back."""

import uuid
from datetime import date
from typing import Any

from pydantic import Field

from shared.events.envelope import EventData, register
from shared.events.topics import Topic


class PersonState(EventData):
    """Everything profiles knows of a person, as of `version`."""

    person_id: uuid.UUID
    external_id: str
    version: int
    email: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    display_name: str | None = None
    title: str | None = None
    department: str | None = None
    division: str | None = None
    cost_center: str | None = None
    location: str | None = None
    time_zone: str | None = None
    languages: list[str] = Field(default_factory=list)
    manager_external_id: str | None = None
    hire_date: date | None = None
    employment_status: str = "active"
    attributes: dict[str, Any] = Field(default_factory=dict)

    def aggregate_id(self) -> str:
        return str(self.person_id)


@register
class PersonUpsertedV1(PersonState):
    """A person was created or changed (an unchanged upsert publishes nothing)."""

    event_type = "mentorbus.person.upserted.v1"
    topic = Topic.PEOPLE


@register
class PersonDeactivatedV1(PersonState):
    """A person was offboarded: downstream services drop them from pools and schedules."""

    event_type = "mentorbus.person.deactivated.v1"
    topic = Topic.PEOPLE
