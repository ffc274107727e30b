"""Session events: scheduling of one-off and recurring sessions, on `mentorbus.sessions`.

A session is one-off, or a series (`rrule`, RFC 5545). Events about one occurrence of a
series (completed, no-show, cancelled, rescheduled, reminder due) name it by
`occurrence_starts_at`, the occurrence's original start, and then carry that occurrence's
own `starts_at`, `duration_minutes` and `status`; events about the whole session leave it
`None`. One-off sessions name their single occurrence too, so a consumer that counts
completed occurrences treats both alike. Every event carries the session's full state
and participants, so consumers (feedback, matching, webhooks) never call back.
"""

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.events.envelope import EventData, register
from shared.events.topics import Topic


class SessionParticipant(BaseModel):
    """Someone a session includes (the mentor, the mentee or every circle member)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    person_id: uuid.UUID | None = None
    external_id: str
    role: str  # mentor | mentee | member


class SessionState(EventData):
    """A session (or series) as of `version`."""

    session_id: uuid.UUID
    version: int
    match_id: uuid.UUID | None = None
    group_id: uuid.UUID | None = None
    program_id: uuid.UUID | None = None
    starts_at: datetime
    duration_minutes: int
    rrule: str | None = None
    title: str | None = None
    status: str  # scheduled | cancelled | completed | no_show
    participants: list[SessionParticipant] = Field(default_factory=list)
    # The occurrence of a series this event is about (its original start), if any.
    occurrence_starts_at: datetime | None = None
    reason: str | None = None
    # What the change covers: "session" (all of it), "occurrence" (the one named by
    # `occurrence_starts_at`) or "following" (that one and every later one).
    scope: str | None = None
    time_zone: str | None = None

    def aggregate_id(self) -> str:
        return str(self.session_id)


@register
class SessionScheduledV1(SessionState):
    """A session or series was booked."""

    event_type = "mentorbus.session.scheduled.v1"
    topic = Topic.SESSIONS


@register
class SessionRescheduledV1(SessionState):
    """A session, an occurrence, or this-and-following occurrences moved."""

    event_type = "mentorbus.session.rescheduled.v1"
    topic = Topic.SESSIONS


@register
class SessionCancelledV1(SessionState):
    """A session, an occurrence, or this-and-following occurrences were cancelled."""

    event_type = "mentorbus.session.cancelled.v1"
    topic = Topic.SESSIONS


@register
class SessionCompletedV1(SessionState):
    """A session (or one occurrence) took place."""

    event_type = "mentorbus.session.completed.v1"
    topic = Topic.SESSIONS


@register
class SessionNoShowV1(SessionState):
    """A session (or one occurrence) was missed."""

    event_type = "mentorbus.session.no_show.v1"
    topic = Topic.SESSIONS


@register
class SessionReminderDueV1(SessionState):
    """A reminder for an upcoming occurrence is due (`lead_minutes` before it starts)."""

    event_type = "mentorbus.session.reminder_due.v1"
    topic = Topic.SESSIONS

    lead_minutes: int = 0
