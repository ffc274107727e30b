"""Gateway settings (env prefix `MENTORBUS_`)."""

from pydantic import model_validator

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

    @model_validator(mode="after")
    def _strong_admin_token(self) -> "GatewaySettings":
        if self.environment == "production" and len(self.admin_token) < 32:
            raise ValueError("MENTORBUS_ADMIN_TOKEN must be set (32+ characters) in production")
        return self

    def upstream_url(self, service: str) -> str:
        """Base URL of a service by name."""
        url: str = getattr(self, f"{service}_url")
        return url.rstrip("/")
