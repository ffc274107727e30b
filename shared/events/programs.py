"""Program events, carrying full state so consumers never call back."""

import uuid
from datetime import date
from typing import Any

from pydantic import Field

from shared.events.envelope import EventData, register
from shared.events.topics import Topic


class ProgramState(EventData):
    """A program as of `version`. `criteria` holds matching weights and rules."""

    program_id: uuid.UUID
    version: int
    name: str
    description: str | None = None
    format: str  # one_to_one | group | reverse | peer | flash
    status: str  # draft | open | active | closed
    starts_on: date | None = None
    ends_on: date | None = None
    max_mentees_per_mentor: int = 1
    criteria: dict[str, Any] = Field(default_factory=dict)
    # Intake questions (`[{"key", "prompt", "type", "options", "required"}]`).
    questions: list[dict[str, Any]] = Field(default_factory=list)

    def aggregate_id(self) -> str:
        return str(self.program_id)


@register
class ProgramCreatedV1(ProgramState):
    """A program was set up."""

    event_type = "mentorbus.program.created.v1"
    topic = Topic.PROGRAMS


@register
class ProgramUpdatedV1(ProgramState):
    """A program changed (including its status or matching criteria)."""

    event_type = "mentorbus.program.updated.v1"
    topic = Topic.PROGRAMS
