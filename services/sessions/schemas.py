"""Sessions wire models: availability, slots, sessions and calendar feeds (snake_case JSON).
Shape is checked here (a 422 names the field); rules across fields live in the domain."""

import uuid
from datetime import date, datetime, time
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SessionStatus = Literal["scheduled", "cancelled", "completed", "no_show"]
Scope = Literal["occurrence", "following"]


class WeeklyWindowIn(BaseModel):
    """A recurring window in the person's zone: `weekday` 0 (Monday) to 6, `start` < `end`."""

    model_config = ConfigDict(extra="forbid")

    weekday: int = Field(ge=0, le=6)
    start: time
    end: time


class ExceptionIn(BaseModel):
    """A date that differs from the week: `available: false` without times is a day off
    (with `start`/`end`: just that part of the day); `available: true` adds a window."""

    model_config = ConfigDict(extra="forbid")

    date: date
    available: bool
    start: time | None = None
    end: time | None = None


class AvailabilityIn(BaseModel):
    """Weekly windows and exceptions in `time_zone` (IANA; default: the person's zone).
    Overlapping windows on one weekday (or one date) are refused with a 422 naming the
    later window; touching windows (09:00-12:00, 12:00-13:00) are fine."""

    model_config = ConfigDict(extra="forbid")

    time_zone: str | None = None
    weekly: list[WeeklyWindowIn] = Field(default_factory=list, max_length=200)
    exceptions: list[ExceptionIn] = Field(default_factory=list, max_length=1000)


class WeeklyWindowOut(BaseModel):
    """A weekly window as stored."""

    weekday: int
    start: str
    end: str


class ExceptionOut(BaseModel):
    """A date exception as stored."""

    date: date
    available: bool
    start: str | None = None
    end: str | None = None


class AvailabilityOut(BaseModel):
    """A person's availability."""

    employee_external_id: str
    time_zone: str
    weekly: list[WeeklyWindowOut]
    exceptions: list[ExceptionOut]
    version: int


class SlotOut(BaseModel):
    """A free slot, in UTC."""

    starts_at: datetime
    ends_at: datetime


class SlotsOut(BaseModel):
    """Free slots common to every participant, sorted."""

    items: list[SlotOut]


class SessionIn(BaseModel):
    """Book a session for an active match (`match_id`) or a circle (`group_id`: the mentor
    and every active member). `rrule` (RFC 5545 value, e.g. `FREQ=WEEKLY;INTERVAL=2;COUNT=6`)
    makes a series, expanded in `time_zone` (default: the mentor's availability zone, else
    their HRIS zone, else UTC). An open-ended rule ends at the series horizon."""

    model_config = ConfigDict(extra="forbid")

    match_id: uuid.UUID | None = None
    group_id: uuid.UUID | None = None
    starts_at: AwareDatetime
    duration_minutes: int = Field(ge=5, le=720)
    rrule: str | None = Field(default=None, max_length=500)
    time_zone: str | None = None
    title: str | None = Field(default=None, max_length=300)
    agenda: str | None = Field(default=None, max_length=10_000)
    location: str | None = Field(default=None, max_length=500)
    video_url: str | None = Field(default=None, max_length=2000)


class SessionPatch(BaseModel):
    """Change a session. For a series, name the occurrence by `occurrence_starts_at` (its
    original start) and `scope`: `occurrence` moves that one only; `following` splits the
    series there, and the answer is the new series carrying the change. Without an
    occurrence, a series takes only title, agenda, location and video_url changes."""

    model_config = ConfigDict(extra="forbid")

    starts_at: AwareDatetime | None = None
    duration_minutes: int | None = Field(default=None, ge=5, le=720)
    title: str | None = Field(default=None, max_length=300)
    agenda: str | None = Field(default=None, max_length=10_000)
    location: str | None = Field(default=None, max_length=500)
    video_url: str | None = Field(default=None, max_length=2000)
    occurrence_starts_at: AwareDatetime | None = None
    scope: Scope = "occurrence"


class CancelIn(BaseModel):
    """Cancel the whole session, one occurrence, or this and the following ones."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=1000)
    occurrence_starts_at: AwareDatetime | None = None
    scope: Scope = "occurrence"


class OccurrenceIn(BaseModel):
    """Which occurrence (required for a series: its original start)."""

    model_config = ConfigDict(extra="forbid")

    occurrence_starts_at: AwareDatetime | None = None
    reason: str | None = Field(default=None, max_length=1000)


class ParticipantOut(BaseModel):
    """Someone the session includes."""

    employee_external_id: str
    person_id: uuid.UUID | None
    role: str
    active: bool


class OccurrenceOut(BaseModel):
    """One occurrence: `occurrence_starts_at` names it, `starts_at` is when it happens."""

    occurrence_starts_at: datetime
    starts_at: datetime
    ends_at: datetime
    status: SessionStatus
    reason: str | None


class SessionOut(BaseModel):
    """A session or series, with its participants and occurrences."""

    id: uuid.UUID
    match_id: uuid.UUID | None
    group_id: uuid.UUID | None
    program_id: uuid.UUID | None
    starts_at: datetime
    duration_minutes: int
    time_zone: str
    rrule: str | None
    title: str | None
    agenda: str | None
    location: str | None
    video_url: str | None
    status: SessionStatus
    reason: str | None
    split_from: uuid.UUID | None
    version: int
    created_at: datetime
    participants: list[ParticipantOut]
    occurrences: list[OccurrenceOut]


class ConflictOut(BaseModel):
    """An existing occurrence a booking would overlap."""

    session_id: uuid.UUID
    occurrence_starts_at: datetime
    starts_at: datetime
    ends_at: datetime
    employee_external_id: str


class FeedOut(BaseModel):
    """A secret calendar link: subscribe to it in a calendar app (no header needed)."""

    url: str
