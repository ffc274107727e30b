"""Gateway settings (env prefix `MENTORBUS_`)."""

from pydantic import Field, model_validator

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
    # A verified API key is trusted for this long without asking the database again: a key
    # revoked through another gateway replica stops working here within this time (through
    # this replica, at once). 0 checks the database on every request.
    api_key_cache_seconds: float = 5.0
    api_key_cache_size: int = 10_000
    # End-user tokens (JWT) from the organizations' identity provider: a PEM public key or
    # a JWKS URL (either enables them), with the issuer and audience every token must name.
    jwt_public_key: str = ""
    jwt_jwks_url: str = ""
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    jwt_leeway_seconds: float = 30.0
    # Browser origins allowed to call the API (comma-separated; empty: none).
    cors_origins: str = ""

    @model_validator(mode="after")
    def _strong_admin_token(self) -> "GatewaySettings":
        if self.environment == "production":
            reason = weak_secret_reason(self.admin_token)
            if reason:
                raise ValueError(f"MENTORBUS_ADMIN_TOKEN is refused in production: {reason}")
        return self

    @model_validator(mode="after")
    def _jwt_complete(self) -> "GatewaySettings":
        if self.jwt_enabled and not (self.jwt_issuer and self.jwt_audience):
            raise ValueError(
                "MENTORBUS_JWT_ISSUER and MENTORBUS_JWT_AUDIENCE are required with "
                "MENTORBUS_JWT_PUBLIC_KEY or MENTORBUS_JWT_JWKS_URL"
            )
        return self

    @property
    def cors_origin_list(self) -> list[str]:
        """`cors_origins` as a list."""
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def jwt_enabled(self) -> bool:
        """Whether end-user tokens are accepted."""
        return bool(self.jwt_public_key or self.jwt_jwks_url)

    def upstream_url(self, service: str) -> str:
        """Base URL of a service by name."""
        url: str = getattr(self, f"{service}_url")
        return url.rstrip("/")
