"""Matching settings (env prefix `MENTORBUS_`)."""

from shared.settings import ServiceSettings


class MatchingSettings(ServiceSettings):
    """The shared settings plus the matching-run worker's timing."""

    service_name: str = "matching"
    # How often the run worker looks for queued runs it was not woken for (another
    # replica's, or ones left by a stopped process).
    matching_run_poll_seconds: float = 2.0
    # A running run whose heartbeat is older than this is taken over by another worker.
    matching_run_stale_seconds: float = 15.0
    # Runs of one program that may be pending or running at once; one more is a 409.
    matching_max_open_runs_per_program: int = 2
