"""Sessions settings (env prefix `MENTORBUS_`)."""

from shared.settings import ServiceSettings


class SessionsSettings(ServiceSettings):
    """Nothing beyond the shared settings yet."""

    service_name: str = "sessions"
