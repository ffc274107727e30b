"""Kafka topics: one per aggregate, keyed by aggregate id so its events stay in order."""

from enum import StrEnum


class Topic(StrEnum):
    """The topics of the public event contract."""

    ORGANIZATIONS = "mentorbus.organizations"
    PEOPLE = "mentorbus.people"
    PROGRAMS = "mentorbus.programs"
    ENROLLMENTS = "mentorbus.enrollments"
    MATCHES = "mentorbus.matches"
    SESSIONS = "mentorbus.sessions"
    FEEDBACK = "mentorbus.feedback"
    WEBHOOKS = "mentorbus.webhooks"


ALL_TOPICS: tuple[str, ...] = tuple(t.value for t in Topic)


def dead_letter_topic(consumer_group: str) -> str:
    """Where a consumer group parks events it cannot handle."""
    return f"mentorbus.dlq.{consumer_group}"
