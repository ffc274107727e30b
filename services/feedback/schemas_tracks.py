"""Wire models of learning tracks, mentoring agreements and outcomes (snake_case JSON,
names fixed by the public contract: Track, Agreement, Outcomes)."""

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

StepKind = Literal["resource", "discussion", "task", "check_in"]
CompletedBy = Literal["mentee", "mentor", "both"]
StepStatus = Literal["open", "done", "overdue"]
TemplateName = Literal["leadership", "onboarding", "reverse_mentoring"]


class StepIn(BaseModel):
    """A step of a module. `id` is kept across edits (give it back when editing a track);
    a new step gets one."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    kind: StepKind
    title: str = Field(min_length=1, max_length=300)
    url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://")
    prompt: str | None = Field(default=None, max_length=4000)
    due_day: int | None = Field(
        default=None, ge=0, le=3650, description="Due this many days after the match started"
    )
    completed_by: CompletedBy = "both"

    @model_validator(mode="after")
    def _resource_has_link(self) -> "StepIn":
        if self.kind == "resource" and self.url is None:
            raise ValueError("a resource step needs a url")
        return self


class ModuleIn(BaseModel):
    """An ordered module of steps."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=300)
    steps: list[StepIn] = Field(min_length=1, max_length=100)


def _unique_step_ids(modules: list[ModuleIn] | None) -> None:
    ids = [s.id for m in modules or [] for s in m.steps if s.id is not None]
    if len(ids) != len(set(ids)):
        raise ValueError("step ids must be unique within a track")


class TrackIn(BaseModel):
    """`POST /v1/programs/{id}/tracks`: modules, or a built-in `template` (leadership,
    onboarding, reverse_mentoring) to start from."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    modules: list[ModuleIn] | None = Field(default=None, min_length=1, max_length=50)
    template: TemplateName | None = None
    is_default: bool = Field(
        default=False, description="Assigned to every match of the program that becomes active"
    )

    @model_validator(mode="after")
    def _modules_or_template(self) -> "TrackIn":
        if (self.modules is None) == (self.template is None):
            raise ValueError("give either modules or a template")
        if self.template is None and self.name is None:
            raise ValueError("a track needs a name")
        _unique_step_ids(self.modules)
        return self


class TrackPatch(BaseModel):
    """`PATCH /v1/tracks/{id}`: changed modules make a new version (matches keep theirs)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    modules: list[ModuleIn] | None = Field(default=None, min_length=1, max_length=50)
    is_default: bool | None = None

    @model_validator(mode="after")
    def _unique(self) -> "TrackPatch":
        _unique_step_ids(self.modules)
        return self


class TrackCopyIn(BaseModel):
    """`POST /v1/tracks/{id}/copy`: the track's current version into a program."""

    model_config = ConfigDict(extra="forbid")

    program_id: uuid.UUID
    name: str | None = Field(default=None, min_length=1, max_length=200)
    is_default: bool = False


class StepOut(BaseModel):
    """A step as stored."""

    id: str
    kind: StepKind
    title: str
    url: str | None = None
    prompt: str | None = None
    due_day: int | None = None
    completed_by: CompletedBy


class ModuleOut(BaseModel):
    """A module as stored."""

    title: str
    steps: list[StepOut]


class TrackOut(BaseModel):
    """A track (its current version)."""

    id: uuid.UUID
    program_id: uuid.UUID
    name: str
    version: int
    is_default: bool
    modules: list[ModuleOut]
    created_at: datetime
    updated_at: datetime


class CompletionOut(BaseModel):
    """Who did their part of a step, and when."""

    employee_external_id: str
    role: Literal["mentee", "mentor"]
    completed_at: datetime


class MatchStepOut(BaseModel):
    """A step of a match's track with its progress."""

    step_id: str
    module: str
    title: str
    kind: StepKind
    completed_by: CompletedBy
    due_on: date | None
    status: StepStatus
    completed_at: datetime | None
    completions: list[CompletionOut]


class MatchTrackOut(BaseModel):
    """`GET /v1/matches/{id}/track`: the version the match follows and every step."""

    match_id: uuid.UUID
    track_id: uuid.UUID
    name: str
    version: int
    started_on: date
    completed_at: datetime | None
    steps: list[MatchStepOut]


class MoveTrackIn(BaseModel):
    """`PATCH /v1/matches/{id}/track` (admins): move the match to a track of its program,
    at a version (default: the track's current one). Completed steps whose ids the new
    version keeps still count."""

    model_config = ConfigDict(extra="forbid")

    track_id: uuid.UUID | None = None
    version: int | None = Field(default=None, ge=1)


class CompleteStepIn(BaseModel):
    """Who completes the step: a member completes as themselves (may omit it); an admin
    or API key names the participant it acts for."""

    model_config = ConfigDict(extra="forbid")

    employee_external_id: str | None = Field(default=None, min_length=1, max_length=255)


# --- agreements -------------------------------------------------------------------------


class AgreementTerms(BaseModel):
    """The terms of a mentoring agreement (a program's template, or a match's own)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    expectations: str | None = Field(default=None, max_length=4000)
    cadence: str | None = Field(default=None, max_length=500)
    duration: str | None = Field(default=None, max_length=500)
    confidentiality: str | None = Field(default=None, max_length=4000)
    goals: list[str] = Field(default_factory=list, max_length=20)


class AgreementTemplateOut(AgreementTerms):
    """`GET/PUT /v1/programs/{id}/agreement-template`."""

    model_config = ConfigDict(extra="ignore")

    program_id: uuid.UUID
    version: int


class SignatureOut(BaseModel):
    """A signature: who, when, and the text version they signed."""

    employee_external_id: str
    signed_at: datetime
    version: int


class AgreementOut(BaseModel):
    """`GET /v1/matches/{id}/agreement`."""

    match_id: uuid.UUID
    text: str
    terms: AgreementTerms
    version: int
    status: Literal["draft", "signed"]
    signatures: list[SignatureOut]
    created_at: datetime
    signed_at: datetime | None


class SignIn(BaseModel):
    """`POST /v1/matches/{id}/agreement/sign`; `version`, if given, must be the current text
    version (so nobody signs a text they did not read)."""

    model_config = ConfigDict(extra="forbid")

    employee_external_id: str | None = Field(default=None, min_length=1, max_length=255)
    version: int | None = Field(default=None, ge=1)


# --- outcomes ---------------------------------------------------------------------------


class Outcomes(BaseModel):
    """`GET /v1/programs/{id}/outcomes`: every figure with its counts, and `definitions`."""

    model_config = ConfigDict(extra="allow")

    program_id: uuid.UUID
    as_of: date
    retention: dict[str, Any]
    promotions: dict[str, Any]
    network: dict[str, Any]
    tracks: dict[str, Any]
    agreements: dict[str, Any]
    definitions: dict[str, str]
