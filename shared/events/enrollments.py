"""Enrollment events: a person joins a program as mentor, mentee or both."""

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.events.envelope import EventData, register
from shared.events.topics import Topic


class Skill(BaseModel):
    """A skill with a level from 1 (beginner) to 5 (expert)."""

    model_config = ConfigDict(frozen=True)

    name: str
    level: int = Field(ge=1, le=5)


class EnrollmentState(EventData):
    """An enrollment as of `version`."""

    enrollment_id: uuid.UUID
    program_id: uuid.UUID
    person_id: uuid.UUID
    employee_external_id: str
    version: int
    role: str  # mentor | mentee | both
    skills: list[Skill] = Field(default_factory=list)
    goals: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    capacity: int | None = None
    preferences: dict[str, Any] = Field(default_factory=dict)
    bio: str | None = None
    # Answers to the program's intake questions, by question key.
    answers: dict[str, Any] = Field(default_factory=dict)
    status: str = "active"  # active | withdrawn

    def aggregate_id(self) -> str:
        return str(self.enrollment_id)


@register
class EnrollmentCreatedV1(EnrollmentState):
    """A person enrolled."""

    event_type = "mentorbus.enrollment.created.v1"
    topic = Topic.ENROLLMENTS


@register
class EnrollmentUpdatedV1(EnrollmentState):
    """An enrollment changed (skills, goals, capacity, preferences...)."""

    event_type = "mentorbus.enrollment.updated.v1"
    topic = Topic.ENROLLMENTS


@register
class EnrollmentWithdrawnV1(EnrollmentState):
    """An enrollment was withdrawn (by the person, an admin, or offboarding)."""

    event_type = "mentorbus.enrollment.withdrawn.v1"
    topic = Topic.ENROLLMENTS
