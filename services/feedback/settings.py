"""Feedback settings (env prefix `MENTORBUS_`)."""

from shared.settings import ServiceSettings


class FeedbackSettings(ServiceSettings):
    """Nothing beyond the shared settings yet."""

    service_name: str = "feedback"
    # A match whose agreement is still unsigned this many days after its draft is at risk.
    agreement_sign_days: int = 14
