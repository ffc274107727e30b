"""Webhook settings (env prefix `MENTORBUS_WEBHOOK_`)."""

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Development only: production refuses to start without a real key (see below).
DEVELOPMENT_SECRET_KEY = "bWVudG9yYnVzLWRldmVsb3BtZW50LW9ubHkta2V5ISE="


class WebhookSettings(BaseSettings):
    """Where webhooks may point, how deliveries are retried, and the secrets' key.

    The retry defaults (5 s doubling to a 4 h cap, 17 attempts) spread a delivery's
    attempts over about a day; the tests shorten them to seconds.
    """

    model_config = SettingsConfigDict(env_prefix="MENTORBUS_WEBHOOK_", extra="ignore")

    environment: str = Field(
        default="development", validation_alias=AliasChoices("MENTORBUS_ENVIRONMENT")
    )
    # Fernet keys (urlsafe base64 of 32 bytes), comma-separated: the first encrypts, all
    # decrypt, so the key can be rotated. Generate one with
    # `python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.
    secret_key: str = DEVELOPMENT_SECRET_KEY
    # Private, loopback and link-local targets (and plain http) are refused unless these
    # say otherwise: local development and tests only.
    allow_private_targets: bool = False
    allow_http: bool = False
    # How long the previous secret stays valid after a rotation, unless the call says.
    rotation_grace_seconds: int = 24 * 3600
    connect_timeout_seconds: float = 3.0
    timeout_seconds: float = 10.0
    max_response_bytes: int = 64 * 1024
    retry_base_seconds: float = 5.0
    retry_max_delay_seconds: float = 4 * 3600.0
    max_attempts: int = 17
    # An endpoint is disabled after this many failed attempts in a row, spanning at least
    # `disable_after_seconds` (a short outage of a busy endpoint is not "a run of failures").
    disable_after_failures: int = 15
    disable_after_seconds: float = 24 * 3600.0
    # Deliveries posted at once per gateway replica, and how long a claim holds a delivery
    # (a replica that dies mid-post releases it after this).
    concurrency: int = 64
    lease_seconds: float = 60.0
    idle_poll_seconds: float = 1.0
    # Finished deliveries older than this leave the delivery log.
    log_retention_days: int = 30

    @model_validator(mode="after")
    def _real_key_in_production(self) -> "WebhookSettings":
        if self.environment == "production" and (
            not self.secret_key or DEVELOPMENT_SECRET_KEY in self.secret_key.split(",")
        ):
            raise ValueError("MENTORBUS_WEBHOOK_SECRET_KEY must be set in production")
        return self
