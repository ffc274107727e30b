"""The one place that talks to kafka-python. Its calls block, so callers run them in
threads (`asyncio.to_thread` or a consumer thread), never on the event loop."""

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import (
    ConsumerRebalanceListener,
    KafkaAdminClient,
    KafkaConsumer,
    KafkaProducer,
    TopicPartition,
)
from kafka import errors as kafka_errors
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

CLOUDEVENTS_CONTENT_TYPE = b"application/cloudevents+json; charset=utf-8"

# kafka-python doubles the wait between reconnection attempts up to 30 s by default: a
# broker back from an outage would then be noticed up to 30 s late (and a relay's
# bootstrap would give up just before). One attempt a second at most picks it up at once.
RECONNECT_BACKOFF_MAX_MS = 1_000


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """A record to produce: `value` is sent as is if it is bytes, else as JSON."""

    topic: str
    key: str
    value: Any
    headers: Sequence[tuple[str, bytes]] = ()


def client_security(settings: ServiceSettings) -> dict[str, Any]:
    """The TLS/SASL options every client (producer, consumer, admin) connects with, from
    `MENTORBUS_KAFKA_SECURITY_PROTOCOL`, `..._SASL_*` and `..._SSL_*` settings."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_sasl_mechanism:
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        value = getattr(settings, f"kafka_{name}")
        if value:
            options[name] = value
    return options


# Errors that retrying with the same configuration can never fix, with what to change.
_FATAL_HINTS: dict[type[Exception], str] = {
    kafka_errors.InvalidSessionTimeoutError: (
        "the broker refuses the consumer session timeout: set "
        "MENTORBUS_KAFKA_SESSION_TIMEOUT_MS within the broker's group.min/max.session.timeout.ms "
        "(Apache Kafka's defaults: 6000-1800000) and restart"
    ),
    kafka_errors.GroupAuthorizationFailedError: (
        "the broker denies this consumer group: grant the credentials READ on the group"
    ),
    kafka_errors.TopicAuthorizationFailedError: (
        "the broker denies a topic: grant the credentials access to the mentorbus.* topics"
    ),
    kafka_errors.ClusterAuthorizationFailedError: (
        "the broker denies a cluster operation: grant the credentials the cluster ACLs needed"
    ),
    kafka_errors.SaslAuthenticationFailedError: (
        "SASL authentication failed: check MENTORBUS_KAFKA_SASL_USERNAME/_PASSWORD/_MECHANISM"
    ),
    kafka_errors.UnsupportedSaslMechanismError: (
        "the broker does not offer this SASL mechanism: change MENTORBUS_KAFKA_SASL_MECHANISM"
    ),
    kafka_errors.UnsupportedVersionError: (
        "the broker does not support a protocol version this client needs: use a broker "
        "compatible with Apache Kafka 2.x or newer"
    ),
}


def fatal_broker_error(exc: BaseException) -> str | None:
    """What to change, if `exc` is an error the broker will answer again on every retry
    with the same configuration (None for errors worth retrying)."""
    for error_type, hint in _FATAL_HINTS.items():
        if isinstance(exc, error_type):
            return f"{type(exc).__name__}: {hint}"
    return None


def _serialize(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return json.dumps(value, separators=(",", ":")).encode()


PRODUCER_BATCH_BYTES = 1_000_000
# Records a consumer takes per poll: the consumer applies a poll in one transaction.
CONSUMER_POLL_RECORDS = 2000


class EventPublisher:
    """A lazily created, idempotent producer that sends a batch and flushes once.

    After any failure the producer is discarded and rebuilt on the next batch, so a broker
    that went away and came back is picked up without restarting the service.
    """

    def __init__(self, settings: ServiceSettings) -> None:
        self._settings = settings
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def _get(self) -> KafkaProducer:
        if self._producer is None:
            s = self._settings
            self._producer = KafkaProducer(
                bootstrap_servers=s.kafka_servers,
                client_id=f"mentorbus-{s.service_name}",
                reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
                acks="all",
                enable_idempotence=True,
                linger_ms=5,
                # Big record batches: kafka-python's cost is per batch as much as per record
                # (16 KB, its default, held ~15 events: 3,200 events/s here; 1 MB: 18,500),
                # and consumers decode fewer, bigger batches faster too. Kept under Apache
                # Kafka's default message.max.bytes (1,048,588), which bounds a batch.
                batch_size=PRODUCER_BATCH_BYTES,
                request_timeout_ms=s.kafka_request_timeout_ms,
                delivery_timeout_ms=s.kafka_delivery_timeout_ms,
                max_block_ms=s.kafka_request_timeout_ms,
                **client_security(s),
            )
        return self._producer

    def publish_batch(self, records: Iterable[OutgoingRecord]) -> None:
        """Send every record and wait until the broker acknowledged all of them."""
        with self._lock:
            try:
                producer = self._get()
                futures = [
                    producer.send(
                        r.topic,
                        key=r.key.encode(),
                        value=_serialize(r.value),
                        headers=[("content-type", CLOUDEVENTS_CONTENT_TYPE), *r.headers],
                    )
                    for r in records
                ]
                producer.flush(timeout=self._settings.kafka_delivery_timeout_ms / 1000)
                for future in futures:
                    future.get(timeout=0)
            except Exception:
                self._discard()
                raise

    def _discard(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=0)
            except Exception:  # closing a broken producer may fail too; it is gone anyway
                log.debug("closing failed producer", exc_info=True)
            self._producer = None

    def close(self) -> None:
        """Flush what is pending and close the producer."""
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=5)
                self._producer = None


class _AssignmentWatch(ConsumerRebalanceListener):
    def __init__(self, on_assigned: Callable[[], None]) -> None:
        self._on_assigned = on_assigned

    def on_partitions_revoked(self, revoked: Any) -> None:
        pass

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._on_assigned()


def make_consumer(
    settings: ServiceSettings,
    group_id: str,
    topics: Sequence[str],
    on_assigned: Callable[[], None] | None = None,
) -> KafkaConsumer:
    """A consumer-group member with manual offset commits, starting new groups at the
    beginning so no event published before the group existed is missed. `on_assigned`
    runs (in the polling thread) each time the group hands it its partitions, which is
    when it has truly joined."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_servers,
        group_id=group_id,
        client_id=f"mentorbus-{settings.service_name}",
        reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        request_timeout_ms=max(
            settings.kafka_request_timeout_ms, settings.kafka_session_timeout_ms + 5_000
        ),
        max_poll_records=CONSUMER_POLL_RECORDS,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        **client_security(settings),
    )
    listener = _AssignmentWatch(on_assigned) if on_assigned else None
    consumer.subscribe(list(topics), listener=listener)
    return consumer


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as it sits in a topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def read_whole_topic(
    settings: ServiceSettings, topic: str, timeout_seconds: float = 30.0
) -> list[StoredRecord]:
    """Every record a topic holds now, partition by partition in offset order, read
    without a consumer group (nothing is committed; nobody's position moves)."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_servers,
        group_id=None,
        client_id=f"mentorbus-{settings.service_name}-reader",
        enable_auto_commit=False,
        request_timeout_ms=max(
            settings.kafka_request_timeout_ms, settings.kafka_session_timeout_ms + 5_000
        ),
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        **client_security(settings),
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not assigned:
            return []
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        ends = consumer.end_offsets(assigned)
        records: list[StoredRecord] = []
        deadline = time.monotonic() + timeout_seconds
        while any(consumer.position(tp) < ends[tp] for tp in assigned):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} took over {timeout_seconds}s")
            for tp, batch in consumer.poll(timeout_ms=500).items():
                records.extend(
                    StoredRecord(tp.topic, tp.partition, r.offset, r.key, r.value)
                    for r in batch
                    if r.offset < ends[tp]
                )
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def ensure_topics(settings: ServiceSettings, topics: Iterable[str]) -> None:
    """Create the topics that do not exist yet (a no-op for those that do)."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_servers,
        client_id=f"mentorbus-{settings.service_name}-admin",
        request_timeout_ms=settings.kafka_request_timeout_ms,
        **client_security(settings),
    )
    try:
        missing = set(topics) - set(admin.list_topics())
        for topic in sorted(missing):
            with contextlib.suppress(TopicAlreadyExistsError):  # a concurrent creator won
                admin.create_topics(
                    [
                        NewTopic(
                            topic,
                            num_partitions=settings.kafka_topic_partitions,
                            replication_factor=settings.kafka_replication_factor,
                        )
                    ]
                )
    finally:
        admin.close()


async def broker_reachable(settings: ServiceSettings, wait_seconds: float = 1.0) -> bool:
    """Whether a TCP connection to any bootstrap server opens within `wait_seconds`."""
    for server in settings.kafka_servers:
        host, _, port = server.rpartition(":")
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, int(port)), wait_seconds
            )
        except (OSError, TimeoutError, ValueError):
            continue
        writer.close()
        return True
    return False
