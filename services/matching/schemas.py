"""Matching wire models (snake_case JSON; the names in the public contract are fixed)."""

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

MatchStatus = Literal["proposed", "active", "declined", "ended", "completed"]
RunStatus = Literal["pending", "running", "succeeded", "failed"]
Objective = Literal["max_score", "max_participation"]


class CriterionOut(BaseModel):
    """One criterion's part in a score: value in [0, 1], configured weight, and its
    contribution (normalized weight x value; the contributions add up to the score)."""

    criterion: str
    value: float
    weight: float
    contribution: float


class SuggestionOut(BaseModel):
    """A mentor suggested to a mentee, with why."""

    mentor_enrollment_id: uuid.UUID
    mentor_external_id: str
    score: float
    breakdown: list[CriterionOut]
    reasons: list[str]


class MenteeSuggestionOut(BaseModel):
    """A mentee suggested to a mentor (a mentor enrollment's suggestions), with why."""

    mentee_enrollment_id: uuid.UUID
    mentee_external_id: str
    score: float
    breakdown: list[CriterionOut]
    reasons: list[str]


class SuggestionsOut(BaseModel):
    """Suggestions, best first: mentors for a mentee (peers for a peer, scored both ways),
    mentees for a mentor. The list shape of every list, though never paged."""

    items: list[SuggestionOut] | list[MenteeSuggestionOut]
    next_cursor: None = Field(
        default=None, description="Always null: `limit` picks how many of the best there are"
    )


class GroupMemberOut(BaseModel):
    """A member of a circle, through their match."""

    match_id: uuid.UUID
    mentee_enrollment_id: uuid.UUID
    mentee_external_id: str | None
    status: MatchStatus
    score: float | None


class GroupOut(BaseModel):
    """A circle of a group program: its mentor and members (with open or past matches)."""

    id: uuid.UUID
    program_id: uuid.UUID
    mentor_enrollment_id: uuid.UUID
    mentor_external_id: str | None
    active_members: int
    members: list[GroupMemberOut]


class DirectoryEntryOut(BaseModel):
    """A mentor in a program's directory, with why they rank where they do."""

    enrollment_id: uuid.UUID
    employee_external_id: str
    skills: list[dict[str, Any]]
    languages: list[str]
    department: str | None
    remaining_capacity: int
    relevance: float
    reasons: list[str]


class MatchIn(BaseModel):
    """`POST /v1/matches`: a mentee asks a mentor."""

    model_config = ConfigDict(extra="forbid")

    program_id: uuid.UUID
    mentee_enrollment_id: uuid.UUID
    mentor_enrollment_id: uuid.UUID


class EndIn(BaseModel):
    """`POST /v1/matches/{id}/end`: why the match ends early."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000)


class MatchOut(BaseModel):
    """A match and where it stands."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    program_id: uuid.UUID
    mentee_enrollment_id: uuid.UUID
    mentor_enrollment_id: uuid.UUID
    mentee_external_id: str | None
    mentor_external_id: str | None
    status: MatchStatus
    score: float | None
    breakdown: list[CriterionOut]
    reasons: list[str]
    end_reason: str | None
    run_id: uuid.UUID | None
    group_id: uuid.UUID | None = Field(
        default=None, description="Group format: the circle this member's match is in"
    )
    version: int
    created_at: datetime
    updated_at: datetime


class PairIn(BaseModel):
    """A mentee and a mentor, by enrollment."""

    model_config = ConfigDict(extra="forbid")

    mentee_enrollment_id: uuid.UUID
    mentor_enrollment_id: uuid.UUID


class RunIn(BaseModel):
    """`POST /v1/programs/{id}/matching-runs`: what the cohort run optimizes."""

    model_config = ConfigDict(extra="forbid")

    objective: Objective = "max_score"
    min_score: float | None = Field(
        default=None, ge=0, le=1, description="Fairness floor: no mentee below it if avoidable"
    )
    one_mentee_per_department: StrictBool = Field(
        default=False, description="A mentor gets at most one mentee of each department"
    )
    # Bounded: each of these multiplies a run's work for every tenant sharing the worker.
    candidates_per_mentee: int = Field(default=50, ge=1, le=200)
    pinned: list[PairIn] = Field(default_factory=list, max_length=2_000)
    forbidden: list[PairIn] = Field(default_factory=list, max_length=2_000)


class ProposalOut(BaseModel):
    """A pair the run proposes."""

    mentee_enrollment_id: uuid.UUID
    mentor_enrollment_id: uuid.UUID
    score: float
    mentee_external_id: str | None = None
    mentor_external_id: str | None = None
    pinned: bool = False
    breakdown: list[CriterionOut] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)


class UnmatchedOut(BaseModel):
    """A mentee the run could not pair, and why."""

    mentee_enrollment_id: uuid.UUID
    reason: str


class RunSummaryOut(BaseModel):
    """A run without its proposals (lists)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    program_id: uuid.UUID
    status: RunStatus
    objective: Objective
    options: dict[str, Any]
    stage: str | None
    progress: float
    inputs_version: dict[str, Any] | None
    total_score: float | None
    matched_count: int | None
    warnings: list[str]
    timings: dict[str, float]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    applied_at: datetime | None
    applied: dict[str, Any] | None


class RunOut(RunSummaryOut):
    """A run; once succeeded it carries its proposals and unmatched mentees."""

    proposals: list[ProposalOut] | None
    unmatched: list[UnmatchedOut] | None


class RunCreatedOut(BaseModel):
    """The 202 answer: the run is queued."""

    id: uuid.UUID
    status: RunStatus


class SkippedOut(BaseModel):
    """A proposal apply did not turn into a match, and why."""

    mentee_enrollment_id: uuid.UUID
    mentor_enrollment_id: uuid.UUID
    reason: str


class ApplyOut(BaseModel):
    """What applying a run did."""

    run_id: uuid.UUID
    created: int
    match_ids: list[uuid.UUID]
    skipped: list[SkippedOut]
