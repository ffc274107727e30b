"""Settings read from `MENTORBUS_*` environment variables, one base for every service."""

import math
from collections import Counter
from typing import Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Signs the identity the gateway passes to services (shared/identity.py). This default is
# public: production refuses it, and every deployment sets its own shared secret.
DEVELOPMENT_IDENTITY_SECRET = "mentorbus-development-identity-secret-not-for-production"
# Words that mark a value as a placeholder someone forgot to replace.
_PLACEHOLDER_WORDS = ("replace", "change", "example", "placeholder", "default", "secret",
                      "password", "mentorbus")  # fmt: skip
# Estimated from character frequencies, which undercounts a truly random string: a random
# 32-character hex token (128 bits) estimates at ~115, rarely below 95.
MIN_SECRET_BITS = 80


def weak_secret_reason(value: str) -> str | None:
    """Why `value` is not fit to be a production secret (None if it is): at least 32
    characters, no placeholder words, and at least 80 bits by its character statistics
    (a random hex or URL-safe token of 32+ characters passes; a phrase or a run does not)."""
    if len(value) < 32:
        return "it is shorter than 32 characters"
    lowered = value.lower()
    if any(word in lowered for word in _PLACEHOLDER_WORDS):
        return "it looks like a placeholder"
    counts = Counter(value)
    per_char = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    if per_char * len(value) < MIN_SECRET_BITS or len(counts) < 8:
        return "it is not random enough (use e.g. `openssl rand -hex 32`)"
    return None


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
    # Create and migrate the database at start (under an advisory lock). A deployment that
    # runs `python -m shared.migrate <service>` once per release sets it false: pods then
    # only check that no migration is pending and refuse to start if one is.
    migrate_on_start: bool = True
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_topic_partitions: int = 3
    kafka_replication_factor: int = 1
    # Apache Kafka refuses session timeouts under 6 s by default; with the embedded broker
    # only, the local run and the tests lower both (3000/300) to join groups in ~2 s.
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 1_000
    kafka_request_timeout_ms: int = 10_000
    # Production clusters: PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL, a SASL mechanism
    # (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) with its credentials, and TLS files.
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    # How long a fetch may wait for new records. Apache Kafka answers as soon as a record
    # arrives; Tansu was seen holding fetches for the full wait, so keep it short.
    kafka_fetch_max_wait_ms: int = 100
    # The relay's producer gives up on a batch after this long and retries the batch.
    kafka_delivery_timeout_ms: int = 15_000
    # Rows the relay sends per flush: 2,000 took 38 µs of CPU an event, 500 took 55.
    relay_batch_size: int = 2000
    relay_idle_poll_seconds: float = 2.0
    # Published outbox rows and inbox records older than this are deleted.
    message_retention_hours: int = 168
    consumer_max_attempts: int = 5
    # On SIGTERM: how long requests in flight may take to finish (uvicorn's
    # --timeout-graceful-shutdown reads this variable in the image), then again how long the
    # consumer (its batch, then an offset commit) and the relay (its batch) may take.
    shutdown_grace_seconds: float = 20.0
    # Read-your-writes: how long a lookup of an id owned by another service waits for this
    # service's projection to catch up before answering 404 (shared/consistency.py).
    projection_wait_seconds: float = 5.0
    # Shared by the gateway and every service: the gateway signs the caller's identity with
    # it, services verify. Production refuses the development default and weak values.
    identity_secret: str = DEVELOPMENT_IDENTITY_SECRET
    # How long a signed identity stays valid (covers clock skew between pods).
    identity_ttl_seconds: int = 30

    @model_validator(mode="after")
    def _production_identity_secret(self) -> "ServiceSettings":
        if self.environment == "production":
            reason = (
                "it is the development default"
                if self.identity_secret == DEVELOPMENT_IDENTITY_SECRET
                else weak_secret_reason(self.identity_secret)
            )
            if reason:
                raise ValueError(f"MENTORBUS_IDENTITY_SECRET is refused in production: {reason}")
        return self

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
