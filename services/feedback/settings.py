"""Feedback settings (env prefix `MENTORBUS_`)."""

from shared.settings import ServiceSettings


class FeedbackSettings(ServiceSettings):
    """Nothing beyond the shared settings yet."""

    service_name: str = "feedback"
