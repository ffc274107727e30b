"""Feedback tables (schema in migrations/)."""

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, SmallInteger, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import service_metadata, utcnow


class Base(DeclarativeBase):
    """This service's tables (its own database, its own metadata)."""

    metadata = service_metadata()


class PersonProjection(Base):
    """A person as feedback needs them, kept from `person.*` events."""

    __tablename__ = "person"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID]
    external_id: Mapped[str]
    display_name: Mapped[str | None]
    employment_status: Mapped[str]
    version: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProgramProjection(Base):
    """A program as feedback needs it, kept from `program.*` events."""

    __tablename__ = "program"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID]
    name: Mapped[str]
    format: Mapped[str]
    status: Mapped[str]
    starts_on: Mapped[date | None]
    ends_on: Mapped[date | None]
    version: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EnrollmentProjection(Base):
    """An enrollment (for participation figures), kept from `enrollment.*` events;
    `created_at`/`withdrawn_at` are the times of those events."""

    __tablename__ = "enrollment"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID]
    program_id: Mapped[uuid.UUID]
    person_id: Mapped[uuid.UUID]
    employee_external_id: Mapped[str]
    role: Mapped[str]
    status: Mapped[str]
    version: Mapped[int]
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MatchProjection(Base):
    """A match, kept from `match.*` events; `created_at`, `activated_at` and `ended_at`
    are the times of the created, accepted and ended/completed events."""

    __tablename__ = "match"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID]
    program_id: Mapped[uuid.UUID]
    group_id: Mapped[uuid.UUID | None]
    mentee_enrollment_id: Mapped[uuid.UUID]
    mentor_enrollment_id: Mapped[uuid.UUID]
    mentee_person_id: Mapped[uuid.UUID | None]
    mentor_person_id: Mapped[uuid.UUID | None]
    mentee_external_id: Mapped[str | None]
    mentor_external_id: Mapped[str | None]
    status: Mapped[str]
    score: Mapped[float | None]
    end_reason: Mapped[str | None]
    version: Mapped[int]
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def participants(self) -> dict[str, str]:
        """External id -> role (`mentee`, `mentor`) of the people in this match."""
        people = {}
        if self.mentee_external_id:
            people[self.mentee_external_id] = "mentee"
        if self.mentor_external_id:
            people[self.mentor_external_id] = "mentor"
        return people


class SessionProjection(Base):
    """A session (or series) as of its newest version, kept from `session.*` events."""

    __tablename__ = "session"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID]
    program_id: Mapped[uuid.UUID | None]
    match_id: Mapped[uuid.UUID | None]
    group_id: Mapped[uuid.UUID | None]
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_minutes: Mapped[int]
    rrule: Mapped[str | None]
    status: Mapped[str]
    participants: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    version: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FeedbackRequest(Base):
    """A person asked for feedback on a session occurrence or an ended match."""

    __tablename__ = "feedback_request"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID]
    kind: Mapped[str]
    program_id: Mapped[uuid.UUID | None]
    match_id: Mapped[uuid.UUID | None]
    group_id: Mapped[uuid.UUID | None]
    session_id: Mapped[uuid.UUID | None]
    occurrence_starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    person_id: Mapped[uuid.UUID | None]
    employee_external_id: Mapped[str]
    role: Mapped[str | None]
    status: Mapped[str] = mapped_column(default="pending")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def status_at(self, now: datetime) -> str:
        """`pending`, `answered`, or `expired` (pending past its expiry)."""
        if self.status == "pending" and self.expires_at <= now:
            return "expired"
        return self.status


class Feedback(Base):
    """An answer to a feedback request (one per request)."""

    __tablename__ = "feedback"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID]
    request_id: Mapped[uuid.UUID]
    kind: Mapped[str]
    program_id: Mapped[uuid.UUID | None]
    match_id: Mapped[uuid.UUID | None]
    session_id: Mapped[uuid.UUID | None]
    employee_external_id: Mapped[str]
    role: Mapped[str | None]
    rating: Mapped[int] = mapped_column(SmallInteger)
    nps: Mapped[int | None] = mapped_column(SmallInteger)
    comment: Mapped[str | None]
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Checkin(Base):
    """A participant's 1-5 pulse on a match."""

    __tablename__ = "checkin"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID]
    match_id: Mapped[uuid.UUID]
    program_id: Mapped[uuid.UUID]
    employee_external_id: Mapped[str]
    role: Mapped[str]
    rating: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Goal(Base):
    """A mentee's SMART goal within a match."""

    __tablename__ = "goal"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID]
    match_id: Mapped[uuid.UUID]
    program_id: Mapped[uuid.UUID]
    mentee_external_id: Mapped[str | None]
    title: Mapped[str]
    description: Mapped[str | None]
    measure: Mapped[str | None]
    target_date: Mapped[date | None]
    milestones: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    status: Mapped[str]
    progress: Mapped[int] = mapped_column(SmallInteger)
    version: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class GoalUpdate(Base):
    """One change of a goal: the fields as they became, by whom and when."""

    __tablename__ = "goal_update"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    goal_id: Mapped[uuid.UUID]
    version: Mapped[int]
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB)
    changed_by: Mapped[str | None]
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- learning tracks, agreements and person history (issue 20) --------------------------


class PersonHistory(Base):
    """One dated HRIS state of a person, kept from `person.*` events' history entries."""

    __tablename__ = "person_history"

    person_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    effective_date: Mapped[date] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID]
    external_id: Mapped[str]
    version: Mapped[int]
    employment_status: Mapped[str]
    job_level: Mapped[int | None]
    department: Mapped[str | None]
    # Derived from the person's other entries (see history.py): when this one stopped
    # holding, and the level before it.
    next_date: Mapped[date | None]
    prev_job_level: Mapped[int | None]


class Track(Base):
    """A program's learning track; `modules` is the current version's."""

    __tablename__ = "track"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID]
    program_id: Mapped[uuid.UUID]
    name: Mapped[str]
    is_default: Mapped[bool] = mapped_column(default=False)
    version: Mapped[int] = mapped_column(default=1)
    modules: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TrackVersion(Base):
    """The modules of one version of a track, kept for the matches that started on it."""

    __tablename__ = "track_version"

    track_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("track.id"), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    modules: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MatchTrack(Base):
    """The track (and version) a match follows, from the day it became active."""

    __tablename__ = "match_track"

    match_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID]
    program_id: Mapped[uuid.UUID]
    track_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("track.id"))
    version: Mapped[int]
    started_on: Mapped[date]
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StepCompletion(Base):
    """A participant's part of a step, done (a `both` step needs the mentee's and the
    mentor's)."""

    __tablename__ = "step_completion"

    match_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("match_track.match_id"), primary_key=True
    )
    step_id: Mapped[str] = mapped_column(primary_key=True)
    role: Mapped[str] = mapped_column(primary_key=True)
    employee_external_id: Mapped[str]
    completed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AgreementTemplate(Base):
    """A program's agreement template: the terms every new match's agreement starts from."""

    __tablename__ = "agreement_template"

    program_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID]
    terms: Mapped[dict[str, Any]] = mapped_column(JSONB)
    version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Agreement(Base):
    """A match's mentoring agreement; `version` counts edits of its text."""

    __tablename__ = "agreement"

    match_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID]
    program_id: Mapped[uuid.UUID]
    terms: Mapped[dict[str, Any]] = mapped_column(JSONB)
    text: Mapped[str]
    version: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(default="draft")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    signed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AgreementSignature(Base):
    """Who signed which version of a match's agreement, and when."""

    __tablename__ = "agreement_signature"

    match_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agreement.match_id"), primary_key=True)
    employee_external_id: Mapped[str] = mapped_column(primary_key=True)
    version: Mapped[int]
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
