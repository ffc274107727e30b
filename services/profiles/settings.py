"""Profiles settings (env prefix `MENTORBUS_`)."""

from shared.settings import ServiceSettings


class ProfilesSettings(ServiceSettings):
    """Nothing beyond the shared settings yet."""

    service_name: str = "profiles"
