"""Profiles settings (env prefix `MENTORBUS_`)."""

from shared.settings import ServiceSettings


class ProfilesSettings(ServiceSettings):
    """The shared settings, plus where clients reach the public API."""

    service_name: str = "profiles"
    # The gateway's public base URL (`MENTORBUS_GATEWAY_URL`): SCIM resource locations
    # and references name it, since clients never reach this service directly.
    gateway_url: str = "http://127.0.0.1:8000"
