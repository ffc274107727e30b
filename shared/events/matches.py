"""Match lifecycle events: proposed (created), accepted, declined, ended, completed."""

import uuid

from shared.events.envelope import EventData, register
from shared.events.topics import Topic


class MatchState(EventData):
    """A match as of `version`."""

    match_id: uuid.UUID
    program_id: uuid.UUID
    version: int
    mentee_enrollment_id: uuid.UUID
    mentor_enrollment_id: uuid.UUID
    mentee_person_id: uuid.UUID | None = None
    mentor_person_id: uuid.UUID | None = None
    mentee_external_id: str | None = None
    mentor_external_id: str | None = None
    status: str  # proposed | active | declined | ended | completed
    score: float | None = None
    end_reason: str | None = None
    # Group format: every member's match in one circle carries the circle's id.
    group_id: uuid.UUID | None = None

    def aggregate_id(self) -> str:
        return str(self.match_id)


@register
class MatchCreatedV1(MatchState):
    """A match was proposed (by a mentee's request or an applied matching run)."""

    event_type = "mentorbus.match.created.v1"
    topic = Topic.MATCHES


@register
class MatchAcceptedV1(MatchState):
    """The mentor accepted: the match is active and counts against capacity."""

    event_type = "mentorbus.match.accepted.v1"
    topic = Topic.MATCHES


@register
class MatchDeclinedV1(MatchState):
    """The mentor declined."""

    event_type = "mentorbus.match.declined.v1"
    topic = Topic.MATCHES


@register
class MatchEndedV1(MatchState):
    """The match ended early, with a reason."""

    event_type = "mentorbus.match.ended.v1"
    topic = Topic.MATCHES


@register
class MatchCompletedV1(MatchState):
    """The match ran its course."""

    event_type = "mentorbus.match.completed.v1"
    topic = Topic.MATCHES
