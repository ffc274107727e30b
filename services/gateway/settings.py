"""Gateway settings (env prefix `MENTORBUS_`)."""

from pydantic import model_validator

from shared.settings import ServiceSettings, weak_secret_reason


class GatewaySettings(ServiceSettings):
    """Where the services are, and the platform admin token."""

    service_name: str = "gateway"
    # Creates organizations and their API keys. Empty disables the admin (development
    # only); the local run generates one and prints it.
    admin_token: str = ""
    profiles_url: str = "http://127.0.0.1:8001"
    matching_url: str = "http://127.0.0.1:8002"
    sessions_url: str = "http://127.0.0.1:8003"
    feedback_url: str = "http://127.0.0.1:8004"
    upstream_timeout_seconds: float = 10.0
    upstream_connect_timeout_seconds: float = 2.0
    upstream_max_connections: int = 200
    # The largest request body forwarded, per kind of route (services/gateway/budgets.py):
    # bulk sync (1,000 employees with their attributes fit), SCIM (advertised to identity
    # providers as maxPayloadSize), starting a matching run, and everything else.
    max_body_bytes: int = 256 * 1024
    max_body_bytes_bulk: int = 8 * 1024 * 1024
    max_body_bytes_scim: int = 1024 * 1024
    max_body_bytes_runs: int = 256 * 1024
    # Rate limits per window (0: unlimited): requests per API key (or end user), and the
    # organization's budgets for expensive work: bulk syncs, SCIM requests, matching runs.
    rate_limit_window_seconds: int = 60
    rate_limit_requests: int = 6000
    rate_limit_bulk: int = 120
    rate_limit_scim: int = 1200
    rate_limit_runs: int = 20
    # Idempotency-Key records live this long (per organization).
    idempotency_ttl_hours: int = 24
    # The gateway's /metrics is served on this operator port only, never on the public one
    # (0: not served; deploy/ and docker-compose.yml use 9100).
    metrics_port: int = 0

    @model_validator(mode="after")
    def _strong_admin_token(self) -> "GatewaySettings":
        if self.environment == "production":
            reason = weak_secret_reason(self.admin_token)
            if reason:
                raise ValueError(f"MENTORBUS_ADMIN_TOKEN is refused in production: {reason}")
        return self

    def upstream_url(self, service: str) -> str:
        """Base URL of a service by name."""
        url: str = getattr(self, f"{service}_url")
        return url.rstrip("/")
