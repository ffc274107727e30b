"""Feedback events, on `mentorbus.feedback`: answers, goals and check-ins."""

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.events.envelope import EventData, register
from shared.events.topics import Topic


class FeedbackState(EventData):
    """An answer to a feedback request as of `version` (1 when submitted, +1 per edit)."""

    feedback_id: uuid.UUID
    request_id: uuid.UUID
    version: int
    kind: str  # session | match_end
    program_id: uuid.UUID | None = None
    match_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    occurrence_starts_at: datetime | None = None
    employee_external_id: str
    role: str | None = None  # mentor | mentee | member
    rating: int
    nps: int | None = None
    comment: str | None = None
    tags: list[str] = Field(default_factory=list)
    submitted_at: datetime

    def aggregate_id(self) -> str:
        return str(self.feedback_id)


@register
class FeedbackSubmittedV1(FeedbackState):
    """Someone answered a feedback request."""

    event_type = "mentorbus.feedback.submitted.v1"
    topic = Topic.FEEDBACK


@register
class FeedbackUpdatedV1(FeedbackState):
    """An answer was edited within its edit window."""

    event_type = "mentorbus.feedback.updated.v1"
    topic = Topic.FEEDBACK


class Milestone(BaseModel):
    """A step on the way to a goal."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    title: str
    due_date: date | None = None
    done: bool = False


class GoalState(EventData):
    """A mentee's SMART goal within a match, as of `version`."""

    goal_id: uuid.UUID
    version: int
    match_id: uuid.UUID
    program_id: uuid.UUID
    mentee_external_id: str | None = None
    title: str
    description: str | None = None
    measure: str | None = None
    target_date: date | None = None
    milestones: list[Milestone] = Field(default_factory=list)
    status: str  # not_started | in_progress | completed | abandoned
    progress: int

    def aggregate_id(self) -> str:
        return str(self.goal_id)


@register
class GoalCreatedV1(GoalState):
    """A goal was set."""

    event_type = "mentorbus.goal.created.v1"
    topic = Topic.FEEDBACK


@register
class GoalUpdatedV1(GoalState):
    """A goal changed (progress, milestones, status, wording)."""

    event_type = "mentorbus.goal.updated.v1"
    topic = Topic.FEEDBACK


@register
class GoalCompletedV1(GoalState):
    """A goal reached `completed`."""

    event_type = "mentorbus.goal.completed.v1"
    topic = Topic.FEEDBACK


@register
class CheckinRecordedV1(EventData):
    """A participant's 1-5 pulse on whether a match is working."""

    event_type = "mentorbus.checkin.recorded.v1"
    topic = Topic.FEEDBACK

    checkin_id: uuid.UUID
    match_id: uuid.UUID
    program_id: uuid.UUID
    employee_external_id: str
    role: str  # mentor | mentee
    rating: int
    comment: str | None = None
    recorded_at: datetime

    def aggregate_id(self) -> str:
        return str(self.match_id)
