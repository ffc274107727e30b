"""Gateway settings (env prefix `MENTORBUS_`)."""

from pydantic import Field, model_validator

from shared.settings import ServiceSettings


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
    # The largest request body forwarded (a 1,000-employee bulk sync fits comfortably).
    max_body_bytes: int = 32 * 1024 * 1024
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
        if self.environment == "production" and len(self.admin_token) < 32:
            raise ValueError("MENTORBUS_ADMIN_TOKEN must be set (32+ characters) in production")
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
