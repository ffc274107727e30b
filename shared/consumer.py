"""Kafka consumer runner: each event is handled in the service's own database
transaction together with its inbox row; offsets are committed only afterwards.

kafka-python blocks, so polling runs in a thread; each event's handler runs on the
service's event loop and the thread waits for it. Events that cannot be handled go to
the group's dead-letter topic with the error, so they never block a partition.
"""

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.events import CloudEvent, EventData, parse_event
from shared.events.envelope import UnknownEventType
from shared.events.topics import dead_letter_topic
from shared.inbox import claim_event
from shared.kafka import EventPublisher, OutgoingRecord, make_consumer
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, CloudEvent, Any], Awaitable[None]]

EVENTS_CONSUMED = Counter(
    "mentorbus_events_consumed_total",
    "Events taken off Kafka, by outcome (handled, duplicate, skipped, dead_lettered)",
    ["service", "consumer", "outcome"],
)

# Failures that say "the database is away", not "this event is bad": retried without limit.
_TRANSIENT = (OSError, ConnectionError, OperationalError, InterfaceError, TimeoutError)


class _Stopping(Exception):
    """Raised inside the thread to leave a batch uncommitted on shutdown."""


class EventConsumer:
    """One consumer-group member running `handlers` (event model -> async handler)."""

    def __init__(
        self,
        *,
        settings: ServiceSettings,
        group_id: str,
        handlers: Mapping[type[EventData], Handler],
        sessionmaker: async_sessionmaker[AsyncSession],
        dead_letters: EventPublisher,
    ) -> None:
        self.group_id = group_id
        self.topics = sorted({model.topic for model in handlers})
        self.dead_letter_topic = dead_letter_topic(group_id)
        self._settings = settings
        self._handlers = {model.event_type: handler for model, handler in handlers.items()}
        self._sessionmaker = sessionmaker
        self._dead_letters = dead_letters
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start polling in a background thread bound to the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name=f"consumer-{self.group_id}")
        self._thread.daemon = True
        self._thread.start()

    async def stop(self) -> None:
        """Finish the current event, leave the group and join the thread."""
        self._stopping.set()
        if self._thread:
            await asyncio.to_thread(self._thread.join, 30)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                consumer = make_consumer(self._settings, self.group_id, self.topics)
            except Exception as exc:
                log.warning("consumer %s cannot connect (%s)", self.group_id, exc)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.5
            try:
                self._consume(consumer)
            except _Stopping:
                pass
            except Exception:
                log.exception("consumer %s failed; reconnecting", self.group_id)
                self._stopping.wait(1.0)
            finally:
                try:
                    consumer.close(autocommit=False)
                except Exception:
                    log.debug("closing consumer failed", exc_info=True)

    def _consume(self, consumer: Any) -> None:
        while not self._stopping.is_set():
            batch = consumer.poll(timeout_ms=500)
            if not batch:
                continue
            for records in batch.values():
                for record in records:
                    self._handle_record(record)
            # Every polled record is now handled (its effect committed) or dead-lettered.
            try:
                consumer.commit()
            except Exception as exc:  # a rebalance: the next owner redelivers, inbox dedupes
                log.warning("consumer %s offset commit failed: %s", self.group_id, exc)

    def _handle_record(self, record: Any) -> None:
        try:
            envelope, data = parse_event(record.value)
        except UnknownEventType:
            self._count("skipped")  # a type this system does not know (yet): not ours
            return
        except (ValidationError, ValueError) as exc:
            self._dead_letter(record, f"invalid event: {exc}")
            return
        handler = self._handlers.get(envelope.type)
        if handler is None:
            self._count("skipped")
            return
        attempt = 0
        while True:
            attempt += 1
            assert self._loop is not None
            future = asyncio.run_coroutine_threadsafe(
                self._apply(handler, envelope, data), self._loop
            )
            try:
                outcome = future.result()
                self._count(outcome)
                return
            except _TRANSIENT as exc:
                log.warning("consumer %s: transient failure (%s); retrying", self.group_id, exc)
            except Exception as exc:
                if attempt >= self._settings.consumer_max_attempts:
                    self._dead_letter(record, f"{type(exc).__name__}: {exc}")
                    return
                log.warning(
                    "consumer %s: handler failed (%s), attempt %d", self.group_id, exc, attempt
                )
            if self._stopping.wait(min(0.2 * 2**attempt, 10.0)):
                raise _Stopping

    async def _apply(self, handler: Handler, envelope: CloudEvent, data: EventData) -> str:
        async with self._sessionmaker() as session, session.begin():
            if not await claim_event(session, self.group_id, envelope.id, envelope.type):
                return "duplicate"
            await handler(session, envelope, data)
        return "handled"

    def _dead_letter(self, record: Any, error: str) -> None:
        log.error(
            "consumer %s dead-letters %s@%s: %s", self.group_id, record.topic, record.offset, error
        )
        raw = record.value.decode("utf-8", "replace") if record.value else ""
        key = record.key.decode("utf-8", "replace") if record.key else ""
        # If even the dead-letter topic is unreachable this raises: the batch stays
        # uncommitted and is redelivered, so the event is still not lost.
        self._dead_letters.publish_batch(
            [
                OutgoingRecord(
                    topic=self.dead_letter_topic,
                    key=key,
                    value={
                        "error": error,
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                        "key": key,
                        "value": raw,
                    },
                )
            ]
        )
        self._count("dead_lettered")

    def _count(self, outcome: str) -> None:
        EVENTS_CONSUMED.labels(self._settings.service_name, self.group_id, outcome).inc()
