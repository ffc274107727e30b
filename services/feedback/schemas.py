"""Feedback wire models: requests, answers, check-ins, goals, at-risk lists."""

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RequestKind = Literal["session", "match_end"]
RequestStatus = Literal["pending", "answered", "expired"]
GoalStatus = Literal["not_started", "in_progress", "completed", "abandoned"]


class FeedbackRequestOut(BaseModel):
    """Someone asked for feedback on a session occurrence (`session`) or an ended match
    (`match_end`, whose answer adds `nps`)."""

    id: uuid.UUID
    kind: RequestKind
    session_id: uuid.UUID | None
    occurrence_starts_at: datetime | None
    match_id: uuid.UUID | None
    group_id: uuid.UUID | None
    program_id: uuid.UUID | None
    employee_external_id: str
    role: str | None
    status: RequestStatus
    created_at: datetime
    expires_at: datetime
    answered_at: datetime | None


class FeedbackIn(BaseModel):
    """An answer. `comment` is stored exactly as given (plain text; never rendered as HTML
    by Mentorbus)."""

    model_config = ConfigDict(extra="forbid")

    request_id: uuid.UUID
    rating: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=10_000)
    tags: list[str] = Field(default_factory=list, max_length=20)
    nps: int | None = Field(default=None, ge=0, le=10, description="match_end requests only")


class FeedbackPatch(BaseModel):
    """Fields of an answer to change within its edit window."""

    model_config = ConfigDict(extra="forbid")

    rating: int | None = Field(default=None, ge=1, le=5)
    comment: str | None = Field(default=None, max_length=10_000)
    tags: list[str] | None = Field(default=None, max_length=20)
    nps: int | None = Field(default=None, ge=0, le=10)


class FeedbackOut(BaseModel):
    """An answer to a feedback request."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    request_id: uuid.UUID
    kind: RequestKind
    program_id: uuid.UUID | None
    match_id: uuid.UUID | None
    session_id: uuid.UUID | None
    employee_external_id: str
    role: str | None
    rating: int
    nps: int | None
    comment: str | None
    tags: list[str]
    version: int
    created_at: datetime
    updated_at: datetime


class CheckinIn(BaseModel):
    """A 1-5 pulse: is this match working? A member may leave out `employee_external_id`."""

    model_config = ConfigDict(extra="forbid")

    employee_external_id: str | None = None
    rating: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=10_000)


class CheckinOut(BaseModel):
    """A recorded check-in."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    match_id: uuid.UUID
    program_id: uuid.UUID
    employee_external_id: str
    role: str
    rating: int
    comment: str | None
    created_at: datetime


class MilestoneIn(BaseModel):
    """A step on the way to a goal."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=500)
    due_date: date | None = None
    done: bool = False


class GoalIn(BaseModel):
    """A SMART goal for the mentee of a match."""

    model_config = ConfigDict(extra="forbid")

    match_id: uuid.UUID
    title: str = Field(min_length=1, max_length=500)
    description: str | None = Field(default=None, max_length=10_000)
    measure: str | None = Field(default=None, max_length=2_000)
    target_date: date | None = None
    milestones: list[MilestoneIn] = Field(default_factory=list, max_length=100)
    status: GoalStatus = "not_started"
    progress: int = Field(default=0, ge=0, le=100)


class GoalPatch(BaseModel):
    """Fields of a goal to change (only those sent)."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=500)
    description: str | None = Field(default=None, max_length=10_000)
    measure: str | None = Field(default=None, max_length=2_000)
    target_date: date | None = None
    milestones: list[MilestoneIn] | None = Field(default=None, max_length=100)
    status: GoalStatus | None = None
    progress: int | None = Field(default=None, ge=0, le=100)


class GoalUpdateOut(BaseModel):
    """One change of a goal: the fields as they became."""

    model_config = ConfigDict(from_attributes=True)

    version: int
    changes: dict[str, Any]
    changed_by: str | None
    changed_at: datetime


class GoalOut(BaseModel):
    """A goal; `history` (every change, oldest first) only on `GET /v1/goals/{id}` and
    after a change."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    match_id: uuid.UUID
    program_id: uuid.UUID
    mentee_external_id: str | None
    title: str
    description: str | None
    measure: str | None
    target_date: date | None
    milestones: list[dict[str, Any]]
    status: GoalStatus
    progress: int
    version: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    history: list[GoalUpdateOut] | None = None


class ReasonOut(BaseModel):
    """Why a match needs attention."""

    code: str
    detail: str


class AtRiskOut(BaseModel):
    """An active match that needs attention, with every reason."""

    match_id: uuid.UUID
    mentee_external_id: str | None
    mentor_external_id: str | None
    reasons: list[ReasonOut]


class CountOut(BaseModel):
    """A plain count."""

    count: int


class RateOut(BaseModel):
    """`count` of `of`, and their ratio (null when `of` is 0)."""

    rate: float | None
    count: int
    of: int


class AverageOut(BaseModel):
    """`sum` over `count`, and their ratio (null when `count` is 0)."""

    value: float | None
    sum: int
    count: int


class NpsOut(BaseModel):
    """Net promoter score of end-of-match answers: 100 x (promoters - detractors) /
    responses (null without responses)."""

    score: float | None
    promoters: int
    passives: int
    detractors: int
    responses: int


class MedianDaysOut(BaseModel):
    """A median in days, over `count` values."""

    value: float | None
    count: int


class PerMatchOut(BaseModel):
    """`sessions` over `matches`."""

    value: float | None
    sessions: int
    matches: int


class ParticipationOut(BaseModel):
    """Who takes part and how many got matched."""

    mentors: CountOut
    mentees: CountOut
    match_rate: RateOut
    median_days_to_match: MedianDaysOut


class EngagementOut(BaseModel):
    """Whether matches meet."""

    matches: CountOut
    sessions_held: CountOut
    sessions_per_match: PerMatchOut
    cancellation_rate: RateOut
    no_show_rate: RateOut


class MonthOut(BaseModel):
    """Satisfaction in one month (`YYYY-MM`, UTC)."""

    month: str
    average_rating: AverageOut
    nps: NpsOut


class SatisfactionOut(BaseModel):
    """What participants say."""

    average_rating: AverageOut
    nps: NpsOut
    average_rating_by_role: dict[str, AverageOut]
    by_month: list[MonthOut]


class GoalsOut(BaseModel):
    """Goals set in the window and how many of them were completed."""

    set: CountOut
    completed: CountOut
    completion_rate: RateOut


class AnalyticsOut(BaseModel):
    """A program's figures, each with the counts it comes from; `definitions` says how
    each is computed. As CSV (`Accept: text/csv`): `figure,month,value` rows, `figure`
    being the path in this document."""

    program_id: uuid.UUID
    from_: date | None = Field(alias="from")
    to: date | None
    participation: ParticipationOut
    engagement: EngagementOut
    satisfaction: SatisfactionOut
    goals: GoalsOut
    definitions: dict[str, str]
