"""Learning-track and mentoring-agreement events (feedback service, `mentorbus.feedback`),
keyed by match id so one match's events stay in order."""

import uuid
from datetime import datetime

from shared.events.envelope import EventData, register
from shared.events.topics import Topic


class MatchTrackEvent(EventData):
    """Something happened on a match's learning track."""

    match_id: uuid.UUID
    program_id: uuid.UUID
    track_id: uuid.UUID
    version: int

    def aggregate_id(self) -> str:
        return str(self.match_id)


@register
class TrackAssignedV1(MatchTrackEvent):
    """A match became active and got its program's default track (at `version`)."""

    event_type = "mentorbus.track.assigned.v1"
    topic = Topic.FEEDBACK


@register
class TrackStepCompletedV1(MatchTrackEvent):
    """A participant (or an admin for them) completed their part of a step."""

    event_type = "mentorbus.track.step_completed.v1"
    topic = Topic.FEEDBACK

    step_id: str
    employee_external_id: str
    role: str
    completed_at: datetime
    step_done: bool


@register
class TrackCompletedV1(MatchTrackEvent):
    """Every step of the match's track is done."""

    event_type = "mentorbus.track.completed.v1"
    topic = Topic.FEEDBACK

    completed_at: datetime


@register
class AgreementSignedV1(EventData):
    """A participant signed the match's agreement at `version`; `fully_signed` once both
    have signed that version."""

    event_type = "mentorbus.agreement.signed.v1"
    topic = Topic.FEEDBACK

    match_id: uuid.UUID
    program_id: uuid.UUID
    version: int
    employee_external_id: str
    signed_at: datetime
    fully_signed: bool

    def aggregate_id(self) -> str:
        return str(self.match_id)
