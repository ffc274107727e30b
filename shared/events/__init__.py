"""Event contracts: the CloudEvents envelope and every typed event, declared once.

Importing this package registers every event type (type string -> model)."""

from shared.events.enrollments import (
    EnrollmentCreatedV1,
    EnrollmentState,
    EnrollmentUpdatedV1,
    EnrollmentWithdrawnV1,
    Skill,
)
from shared.events.envelope import (
    CloudEvent,
    EventData,
    UnknownEventType,
    event_model,
    make_event,
    parse_event,
)
from shared.events.feedback import (
    CheckinRecordedV1,
    FeedbackState,
    FeedbackSubmittedV1,
    FeedbackUpdatedV1,
    GoalCompletedV1,
    GoalCreatedV1,
    GoalState,
    GoalUpdatedV1,
    Milestone,
)
from shared.events.matches import (
    MatchAcceptedV1,
    MatchCompletedV1,
    MatchCreatedV1,
    MatchDeclinedV1,
    MatchEndedV1,
    MatchState,
)
from shared.events.organizations import OrganizationCreatedV1
from shared.events.people import PersonDeactivatedV1, PersonState, PersonUpsertedV1
from shared.events.programs import ProgramCreatedV1, ProgramState, ProgramUpdatedV1
from shared.events.sessions import (
    SessionCancelledV1,
    SessionCompletedV1,
    SessionNoShowV1,
    SessionParticipant,
    SessionReminderDueV1,
    SessionRescheduledV1,
    SessionScheduledV1,
    SessionState,
)
from shared.events.topics import ALL_TOPICS, Topic, dead_letter_topic
from shared.events.tracks import (
    AgreementSignedV1,
    TrackAssignedV1,
    TrackCompletedV1,
    TrackStepCompletedV1,
)

__all__ = [
    "ALL_TOPICS",
    "AgreementSignedV1",
    "CheckinRecordedV1",
    "CloudEvent",
    "EnrollmentCreatedV1",
    "EnrollmentState",
    "EnrollmentUpdatedV1",
    "EnrollmentWithdrawnV1",
    "EventData",
    "FeedbackState",
    "FeedbackSubmittedV1",
    "FeedbackUpdatedV1",
    "GoalCompletedV1",
    "GoalCreatedV1",
    "GoalState",
    "GoalUpdatedV1",
    "MatchAcceptedV1",
    "MatchCompletedV1",
    "MatchCreatedV1",
    "MatchDeclinedV1",
    "MatchEndedV1",
    "MatchState",
    "Milestone",
    "OrganizationCreatedV1",
    "PersonDeactivatedV1",
    "PersonState",
    "PersonUpsertedV1",
    "ProgramCreatedV1",
    "ProgramState",
    "ProgramUpdatedV1",
    "SessionCancelledV1",
    "SessionCompletedV1",
    "SessionNoShowV1",
    "SessionParticipant",
    "SessionReminderDueV1",
    "SessionRescheduledV1",
    "SessionScheduledV1",
    "SessionState",
    "Skill",
    "Topic",
    "TrackAssignedV1",
    "TrackCompletedV1",
    "TrackStepCompletedV1",
    "UnknownEventType",
    "dead_letter_topic",
    "event_model",
    "make_event",
    "parse_event",
]
