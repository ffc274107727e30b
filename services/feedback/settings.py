"""Feedback settings (env prefix `MENTORBUS_`)."""

from shared.settings import ServiceSettings


class FeedbackSettings(ServiceSettings):
    """How long requests stay open, how long answers may be edited, and when a match is at
    risk."""

    service_name: str = "feedback"
    # A feedback request not answered within this long is `expired`.
    feedback_request_expiry_hours: float = 14 * 24
    # An answer may be edited (PATCH /v1/feedback/{id}) for this long after it was given.
    feedback_edit_window_hours: float = 24
    # At risk: no completed session for this many days (once active that long).
    at_risk_no_session_days: int = 30
    # At risk: the latest check-in rated at or below this.
    at_risk_low_checkin_rating: int = 2
    # At risk: the average rating of the match's answers at or below this.
    at_risk_low_feedback_rating: float = 2.5
    # A match whose agreement is still unsigned this many days after its draft is at risk.
    at_risk_agreement_unsigned_days: int = 14
