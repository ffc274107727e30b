"""Person (HRIS employee) events, carrying full state so consumers never call back."""

import uuid
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.events.envelope import EventData, register
from shared.events.topics import Topic


class PersonHistoryEntry(BaseModel):
    """One dated state of a person in the HRIS: what held from `effective_date` on."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    effective_date: date
    employment_status: str = "active"
    job_level: int | None = None
    department: str | None = None
    division: str | None = None
    title: str | None = None


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
    # Effective dating (optional: older events lack them). `effective_date` is when the
    # current state took effect in the HRIS; `history_entry` is the dated state this change
    # recorded: the current one, or an older one that only joined the history (the current
    # state then stays as it was, with a new version). A history keyed by
    # (person, effective_date) is right under redelivery and reordering.
    job_level: int | None = None
    effective_date: date | None = None
    history_entry: PersonHistoryEntry | None = None

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
