"""Sessions settings (env prefix `MENTORBUS_`)."""

from pydantic import field_validator

from shared.settings import ServiceSettings


class SessionsSettings(ServiceSettings):
    """Scheduling limits, reminder lead times and the public address of calendar feeds."""

    service_name: str = "sessions"
    # Longest `from`..`to` a slot search may span (a longer one is a 422, not a slow answer).
    slot_max_range_days: int = 62
    # Series are materialized up to this far ahead; an open-ended RRULE ends there (UNTIL).
    series_horizon_days: int = 366
    series_max_occurrences: int = 400
    # `session.reminder_due` lead times in minutes, e.g. "1440,60" (24 h and 1 h before).
    reminder_lead_minutes: str = "1440,60"
    reminder_poll_seconds: float = 1.0
    reminder_batch_size: int = 200
    # Where calendar apps reach the gateway: the secret feed URLs start with it. Empty: the
    # gateway's address (`MENTORBUS_GATEWAY_URL`).
    public_url: str = ""
    gateway_url: str = "http://127.0.0.1:8000"

    @field_validator("reminder_lead_minutes")
    @classmethod
    def _leads(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip() and (not part.strip().isdigit() or int(part) <= 0):
                raise ValueError("reminder_lead_minutes: comma-separated positive minutes")
        return value

    @property
    def reminder_leads(self) -> tuple[int, ...]:
        """The reminder lead times, longest first."""
        return tuple(sorted({int(p) for p in self.reminder_lead_minutes.split(",") if p.strip()}))[
            ::-1
        ]

    @property
    def feed_base_url(self) -> str:
        """The public base URL secret calendar links start with."""
        return (self.public_url or self.gateway_url).rstrip("/")
