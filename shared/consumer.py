"""Kafka consumer runner: each event is handled in the service's own database
transaction together with its inbox row; offsets are committed only afterwards.

kafka-python blocks, so polling runs in a thread; each event's handler runs on the
service's event loop and the thread waits for it. Events that cannot be handled go to
the group's dead-letter topic with the error, so they never block a partition.
"""

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from prometheus_client import Counter
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import database_unavailable
from shared.events import CloudEvent, EventData, parse_event
from shared.events.envelope import UnknownEventType
from shared.events.topics import dead_letter_topic
from shared.inbox import claim_event, claim_events
from shared.kafka import EventPublisher, OutgoingRecord, fatal_broker_error, make_consumer
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

Handler = Callable[[AsyncSession, CloudEvent, Any], Awaitable[None]]
BatchFunction = Callable[[AsyncSession, list[tuple[CloudEvent, Any]]], Awaitable[None]]
# Of some (organization id, event type) pairs, those a consumer has anything to do for.
Interest = Callable[[AsyncSession, set[tuple[str, str]]], Awaitable[set[tuple[str, str]]]]


class _Route(BaseModel):
    """The two envelope fields an interest filter reads (JSON parsed in Rust, the rest of
    the envelope skipped): an event nobody wants costs this and no more."""

    type: str
    orgid: str = ""


class BatchHandler:
    """A handler that applies many events in one go (set-based SQL: one statement per
    table for the whole batch instead of one per event). Registered like any handler;
    called alone it applies a batch of one. The consumer hands it every consecutive
    claimed event of a poll that maps to the same function, in order.

    `idempotent`: applying an event again changes nothing (version-guarded upserts of
    full states, and effects that follow only from what changed). Its events then leave
    no inbox row: a redelivery is simply applied again, to no effect."""

    def __init__(self, apply: BatchFunction, *, idempotent: bool = False) -> None:
        self.apply = apply
        self.idempotent = idempotent
        self.__name__ = getattr(apply, "__name__", "batch_handler")
        self.__doc__ = apply.__doc__

    async def __call__(self, session: AsyncSession, event: CloudEvent, data: Any) -> None:
        """Apply one event (the one-by-one retry path)."""
        await self.apply(session, [(event, data)])


def batched(apply: BatchFunction, *, idempotent: bool = False) -> BatchHandler:
    """Register `apply(session, [(envelope, data), ...])` as a handler (see BatchHandler)."""
    return BatchHandler(apply, idempotent=idempotent)


def _needs_inbox(handler: Handler) -> bool:
    """Whether a handler's events are recorded in the inbox (all but idempotent ones)."""
    return not (isinstance(handler, BatchHandler) and handler.idempotent)


EVENTS_CONSUMED = Counter(
    "mentorbus_events_consumed_total",
    "Events taken off Kafka, by outcome (handled, duplicate, skipped, dead_lettered)",
    ["service", "consumer", "outcome"],
)

BROKER_REFUSALS = Counter(
    "mentorbus_kafka_fatal_errors_total",
    "Broker refusals that no retry with the same configuration fixes, by error",
    ["service", "consumer", "error"],
)

# After a refusal the consumer retries this rarely (the broker may be reconfigured).
_REFUSED_RETRY_SECONDS = 30.0

# Failures that say "the database is away", not "this event is bad": retried without limit.
_TRANSIENT = (OSError, ConnectionError, OperationalError, InterfaceError, TimeoutError)


@dataclass(frozen=True, slots=True)
class _Parsed:
    record: Any
    envelope: CloudEvent
    data: EventData
    handler: Handler


def _family(event_type: str) -> str:
    """An event type without its trailing `.v<N>`."""
    head, _, version = event_type.rpartition(".")
    return head if version[:1] == "v" and version[1:].isdigit() else event_type


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
        interest: Interest | None = None,
    ) -> None:
        """`interest`, if given, is asked once a poll which of its (organization, event
        type) pairs matter: the others are skipped unparsed and leave no inbox row (the
        gateway consumes every event for webhooks, and most have no subscriber)."""
        self.group_id = group_id
        self._interest = interest
        self.topics = sorted({model.topic for model in handlers})
        self.dead_letter_topic = dead_letter_topic(group_id)
        self._settings = settings
        self._handlers = {model.event_type: handler for model, handler in handlers.items()}
        # `mentorbus.person.upserted` for `...upserted.v1`: a version of a family we handle
        # that this build does not know is ours to act on later, not someone else's event.
        self._families = {_family(event_type) for event_type in self._handlers}
        self._sessionmaker = sessionmaker
        self._dead_letters = dead_letters
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Readiness: set once the group has assigned this member its partitions; a fatal
        # refusal by the broker says why the member cannot join.
        self.joined = False
        self.refusal: str | None = None

    @property
    def not_ready_reason(self) -> str | None:
        """Why this member is not consuming (None once it has joined its group)."""
        if self.joined:
            return None
        return self.refusal or f"consumer group {self.group_id} not joined yet"

    def _on_assigned(self) -> None:
        self.joined = True
        self.refusal = None

    def start(self) -> None:
        """Start polling in a background thread bound to the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._poll_forever, name=f"consumer-{self.group_id}")
        self._thread.daemon = True
        self._thread.start()

    async def stop(self, grace_seconds: float = 30.0) -> None:
        """Finish the batch in hand, commit its offsets, leave the group and join the
        thread (waiting at most `grace_seconds`)."""
        self._stopping.set()
        if self._thread:
            await asyncio.to_thread(self._thread.join, grace_seconds)

    def _poll_forever(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                consumer = make_consumer(
                    self._settings, self.group_id, self.topics, self._on_assigned
                )
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
            except Exception as exc:
                self.joined = False
                hint = fatal_broker_error(exc)
                if hint is None:
                    log.exception("consumer %s failed; reconnecting", self.group_id)
                    self._stopping.wait(1.0)
                else:
                    self._refused(hint)
            finally:
                try:
                    consumer.close(autocommit=False)
                except Exception:
                    log.debug("closing consumer failed", exc_info=True)

    def _refused(self, hint: str) -> None:
        """The broker refuses this member for good: say so once, loudly, then retry rarely
        and quietly (the broker may be reconfigured meanwhile)."""
        if self.refusal != hint:
            log.error("consumer %s refused by the broker: %s", self.group_id, hint)
            BROKER_REFUSALS.labels(
                self._settings.service_name, self.group_id, hint.split(":", 1)[0]
            ).inc()
        self.refusal = hint
        self._stopping.wait(_REFUSED_RETRY_SECONDS)

    def _consume(self, consumer: Any) -> None:
        while not self._stopping.is_set():
            batch = consumer.poll(timeout_ms=500)
            if not batch:
                continue
            # Every partition's records in one transaction: each partition's stay in order
            # (a key lives in one partition), and one commit serves the whole poll.
            self._handle_batch([r for records in batch.values() for r in records])
            # Every polled record is now handled (its effect committed) or dead-lettered.
            try:
                consumer.commit()
            except Exception as exc:  # a rebalance: the next owner redelivers, inbox dedupes
                log.warning("consumer %s offset commit failed: %s", self.group_id, exc)

    def _handle_batch(self, records: list[Any]) -> None:
        """A poll's records in one transaction (one commit, one inbox insert); if anything
        in it fails, each event is retried alone."""
        if self._interest is not None:
            records = self._of_interest(records)
        ready = [parsed for parsed in map(self._parse, records) if parsed is not None]
        if not ready:
            return
        try:
            outcomes = self._run(self._apply_batch(ready))
        except Exception as exc:
            log.warning("consumer %s: batch failed (%s); one by one", self.group_id, exc)
            for item in ready:
                self._retry(item)
            return
        for outcome in outcomes:
            self._count(outcome)

    def _of_interest(self, records: list[Any]) -> list[Any]:
        """The records `interest` wants, and those it cannot judge (not an envelope: the
        parse dead-letters them); the rest counted as skipped."""
        routes: list[tuple[str, str] | None] = []
        for record in records:
            try:
                route = _Route.model_validate_json(record.value)
                routes.append((route.orgid, route.type))
            except ValidationError:
                routes.append(None)
        try:
            wanted = self._run(self._wanted({r for r in routes if r is not None}))
        except Exception as exc:  # the database away: the usual path waits it out
            log.warning("consumer %s: interest unknown (%s); handling all", self.group_id, exc)
            return records
        kept = []
        for record, key in zip(records, routes, strict=True):
            if key is None or key in wanted:
                kept.append(record)
            else:
                self._count("skipped")
        return kept

    async def _wanted(self, routes: set[tuple[str, str]]) -> set[tuple[str, str]]:
        assert self._interest is not None
        async with self._sessionmaker() as session, session.begin():
            return await self._interest(session, routes)

    def _parse(self, record: Any) -> _Parsed | None:
        """The event and its handler; None for events that are not ours or are invalid
        (those are dead-lettered)."""
        try:
            envelope, data = parse_event(record.value)
        except UnknownEventType as exc:
            if _family(str(exc.args[0])) in self._families:
                # A newer version from an upgraded producer: keep it for a replay once this
                # service is upgraded too (python -m shared.dlq), and keep the partition going.
                self._dead_letter(record, f"unknown event version: {exc.args[0]}")
                return None
            self._count("skipped")  # a type this system does not know (yet): not ours
            return None
        except (ValidationError, ValueError) as exc:
            self._dead_letter(record, f"invalid event: {exc}")
            return None
        handler = self._handlers.get(envelope.type)
        if handler is None:
            self._count("skipped")
            return None
        return _Parsed(record, envelope, data, handler)

    def _retry(self, item: _Parsed) -> None:
        """Handle one event alone until it succeeds; a handler that keeps failing sends it
        to the dead-letter topic, a database that is away is waited for."""
        attempt = 0  # sets the backoff
        failures = 0  # the handler's own: only these count towards the dead-letter topic
        while True:
            attempt += 1
            try:
                self._count(self._run(self._apply(item)))
                return
            except Exception as exc:
                # A database that is away (refusing, restarting, shutting down) is waited
                # for, however long: the event is not at fault.
                if isinstance(exc, _TRANSIENT) or database_unavailable(exc):
                    log.warning("consumer %s: transient failure (%s); retrying", self.group_id, exc)
                else:
                    failures += 1
                    if failures >= self._settings.consumer_max_attempts:
                        self._dead_letter(item.record, f"{type(exc).__name__}: {exc}")
                        return
                    log.warning(
                        "consumer %s: handler failed (%s), attempt %d", self.group_id, exc, failures
                    )
            if self._stopping.wait(min(0.2 * 2**attempt, 10.0)):
                raise _Stopping

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run on the service's event loop and wait for the result (we are its thread)."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _claim_and_handle(self, session: AsyncSession, item: _Parsed) -> str:
        if _needs_inbox(item.handler) and not await claim_event(
            session, self.group_id, item.envelope.id, item.envelope.type
        ):
            return "duplicate"
        await item.handler(session, item.envelope, item.data)
        return "handled"

    async def _apply(self, item: _Parsed) -> str:
        async with self._sessionmaker() as session, session.begin():
            return await self._claim_and_handle(session, item)

    async def _apply_batch(self, items: list[_Parsed]) -> list[str]:
        """All-or-nothing: if any handler raises, the batch rolls back and the caller
        falls back to one event at a time (failures are rare; commits are not)."""
        outcomes: list[str] = []
        run: list[_Parsed] = []  # consecutive events of one batch handler, not applied yet
        async with self._sessionmaker() as session, session.begin():
            recorded = [(i.envelope.id, i.envelope.type) for i in items if _needs_inbox(i.handler)]
            claimed = await claim_events(session, self.group_id, recorded) if recorded else set()
            for item in items:
                if _needs_inbox(item.handler):
                    if item.envelope.id not in claimed:
                        outcomes.append("duplicate")
                        continue
                    claimed.discard(item.envelope.id)  # the same event twice in one batch
                outcomes.append("handled")
                handler = item.handler
                if isinstance(handler, BatchHandler):
                    if run and cast(BatchHandler, run[0].handler).apply is not handler.apply:
                        await _flush(session, run)
                    run.append(item)
                    continue
                await _flush(session, run)
                await handler(session, item.envelope, item.data)
            await _flush(session, run)
        return outcomes

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


async def _flush(session: AsyncSession, run: list[_Parsed]) -> None:
    """Apply a run of events of one batch handler, then empty the run."""
    if not run:
        return
    handler = run[0].handler
    assert isinstance(handler, BatchHandler)
    await handler.apply(session, [(i.envelope, i.data) for i in run])
    run.clear()
