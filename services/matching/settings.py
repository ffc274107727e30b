"""Matching settings (env prefix `MENTORBUS_`)."""

from shared.settings import ServiceSettings


class MatchingSettings(ServiceSettings):
    """Nothing beyond the shared settings yet."""

    service_name: str = "matching"
