"""Settings read from `MENTORBUS_*` environment variables, one base for every service."""

from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every service reads from the environment (prefix `MENTORBUS_`).

    Defaults suit a developer machine: PostgreSQL on 127.0.0.1:5432 with trust auth and a
    Kafka-protocol broker on 127.0.0.1:9092.
    """

    model_config = SettingsConfigDict(env_prefix="MENTORBUS_", extra="ignore")

    service_name: str = "service"
    environment: Literal["development", "test", "production"] = "development"
    # Full SQLAlchemy URL of this service's own database; empty means
    # `postgresql+asyncpg://postgres@127.0.0.1:5432/mentorbus_<service_name>`.
    database_url: str = ""
    database_pool_size: int = 10
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_topic_partitions: int = 3
    kafka_replication_factor: int = 1
    # Apache Kafka refuses session timeouts under 6 s by default; the local run and the
    # tests lower both (3000/300) to join consumer groups in ~2 s instead of ~20 s.
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 1_000
    kafka_request_timeout_ms: int = 10_000
    # How long a fetch may wait for new records. Apache Kafka answers as soon as a record
    # arrives; Tansu was seen holding fetches for the full wait, so keep it short.
    kafka_fetch_max_wait_ms: int = 100
    # The relay's producer gives up on a batch after this long and retries the batch.
    kafka_delivery_timeout_ms: int = 15_000
    relay_batch_size: int = 500
    relay_idle_poll_seconds: float = 2.0
    # Published outbox rows and inbox records older than this are deleted.
    message_retention_hours: int = 168
    consumer_max_attempts: int = 5
    # Read-your-writes: how long a lookup of an id owned by another service waits for this
    # service's projection to catch up before answering 404 (shared/consistency.py).
    projection_wait_seconds: float = 5.0
    # Log lines are JSON on stderr (shared/logs.py), from this level up.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _default_database_url(self) -> "ServiceSettings":
        if not self.database_url:
            self.database_url = (
                f"postgresql+asyncpg://postgres@127.0.0.1:5432/mentorbus_{self.service_name}"
            )
        return self

    @property
    def kafka_servers(self) -> list[str]:
        """The bootstrap servers as a list."""
        return [s.strip() for s in self.kafka_bootstrap_servers.split(",") if s.strip()]
