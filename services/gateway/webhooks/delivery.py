"""The delivery worker: claims due deliveries, posts them signed, records what happened.

Every gateway replica runs one. Claims lease rows with FOR UPDATE SKIP LOCKED, so two
replicas never post the same delivery at once; a replica that dies mid-post releases its
lease when it expires (then the delivery is retried: at-least-once, and `webhook-id` lets
receivers deduplicate). Wakes on the `webhook_delivery` NOTIFY, when a post finishes
(the next event of that aggregate may now go), or every `idle_poll_seconds` for retries.
"""

import asyncio
import contextlib
import logging
import time
from datetime import datetime, timedelta

import aiohttp
import asyncpg
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.gateway.webhooks import domain
from services.gateway.webhooks.domain import Claimed, Outcome
from services.gateway.webhooks.secrets import SecretBox, signature_header
from services.gateway.webhooks.settings import WebhookSettings
from services.gateway.webhooks.ssrf import BlockedTarget, guarded_socket_factory
from shared.db import asyncpg_dsn, utcnow

log = logging.getLogger(__name__)

WEBHOOK_ATTEMPTS = Counter(
    "mentorbus_webhook_attempts_total", "Webhook delivery attempts, by outcome", ["outcome"]
)

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
PURGE_EVERY_SECONDS = 600
USER_AGENT = "Mentorbus-Webhooks/1"


def open_http_session(settings: WebhookSettings) -> aiohttp.ClientSession:
    """The client for deliveries: every socket it opens passes the address guard, short
    timeouts, and never a proxy from the environment."""
    connector = aiohttp.TCPConnector(
        limit=settings.concurrency,
        socket_factory=guarded_socket_factory(settings.allow_private_targets),
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(
            total=settings.timeout_seconds, sock_connect=settings.connect_timeout_seconds
        ),
        trust_env=False,
    )


async def post_signed(
    http: aiohttp.ClientSession, item: Claimed, max_response_bytes: int
) -> Outcome:
    """One signed POST of the event: no redirects followed, a bounded read of the
    answer, and the connect-time address check of the guarded connector."""
    message_id = str(item.event_id)
    timestamp = utcnow()
    headers = {
        "content-type": CONTENT_TYPE,
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature_header(item.secrets, message_id, timestamp, item.payload),
    }
    try:
        async with http.post(
            item.url, data=item.payload.encode(), headers=headers, allow_redirects=False
        ) as response:
            # Read (a bounded amount of) the answer so the connection can be reused.
            await response.content.read(max_response_bytes)
            return Outcome(response.status)
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, BlockedTarget):
            return Outcome(None, str(exc.os_error))
        return Outcome(None, f"cannot connect: {exc}")
    except BlockedTarget as exc:
        return Outcome(None, str(exc))
    except TimeoutError:
        return Outcome(None, "timed out")
    except (aiohttp.ClientError, ValueError, OSError) as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}")


class DeliveryWorker:
    """Posts due webhook deliveries from this process, up to `concurrency` at once."""

    def __init__(
        self,
        *,
        settings: WebhookSettings,
        database_url: str,
        sessionmaker: async_sessionmaker[AsyncSession],
        box: SecretBox,
    ) -> None:
        self._settings = settings
        self._dsn = asyncpg_dsn(database_url)
        self._sessionmaker = sessionmaker
        self._box = box
        self._wakeup = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._outcomes: asyncio.Queue[tuple[Claimed, Outcome, datetime]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None
        self._last_purge = time.monotonic()

    def start(self) -> None:
        """Start claiming, posting and recording in the background of this event loop."""
        self._http = open_http_session(self._settings)
        self._tasks = [
            asyncio.create_task(self._listen(), name="webhook-listen"),
            asyncio.create_task(self._claim_forever(), name="webhook-claim"),
            asyncio.create_task(self._record_forever(), name="webhook-record"),
        ]

    async def stop(self) -> None:
        """Stop claiming; posts in flight are abandoned (their leases expire, they retry)."""
        for task in [*self._tasks, *self._inflight]:
            task.cancel()
        for task in [*self._tasks, *self._inflight]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._http is not None:
            await self._http.close()

    async def _listen(self) -> None:
        while True:
            try:
                conn = await asyncpg.connect(self._dsn)
                try:
                    closed = asyncio.Event()
                    conn.add_termination_listener(lambda *_, done=closed: done.set())
                    await conn.add_listener("webhook_delivery", self._on_notify)
                    await closed.wait()
                finally:
                    await conn.close()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # polling covers the gap
                log.warning("webhook LISTEN connection failed (%s); reconnecting", exc)
                await asyncio.sleep(2)

    def _on_notify(self, *_: object) -> None:
        self._wakeup.set()

    async def _claim_forever(self) -> None:
        while True:
            self._wakeup.clear()
            free = self._settings.concurrency - len(self._inflight)
            claimed: list[Claimed] = []
            if free > 0:
                try:
                    async with self._sessionmaker.begin() as session:
                        claimed = await domain.claim_due(
                            session, free, self._settings.lease_seconds, self._box
                        )
                except Exception as exc:
                    log.warning("claiming webhook deliveries failed: %s", exc)
                for item in claimed:
                    task = asyncio.create_task(self._deliver(item))
                    self._inflight.add(task)
                    task.add_done_callback(self._inflight.discard)
            if claimed and len(claimed) == free:
                await asyncio.sleep(0)  # more may be due: claim again once there is room
                if len(self._inflight) < self._settings.concurrency:
                    continue
            if time.monotonic() - self._last_purge > PURGE_EVERY_SECONDS:
                await self._purge()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._settings.idle_poll_seconds)

    async def _purge(self) -> None:
        self._last_purge = time.monotonic()
        try:
            async with self._sessionmaker.begin() as session:
                await domain.purge_delivery_log(
                    session, timedelta(days=self._settings.log_retention_days)
                )
        except Exception as exc:  # tried again next time
            log.warning("purging the webhook delivery log failed: %s", exc)

    async def _deliver(self, item: Claimed) -> None:
        attempted_at = utcnow()
        assert self._http is not None
        outcome = await post_signed(self._http, item, self._settings.max_response_bytes)
        WEBHOOK_ATTEMPTS.labels("succeeded" if outcome.succeeded else "failed").inc()
        await self._outcomes.put((item, outcome, attempted_at))

    async def _record_forever(self) -> None:
        """Outcomes are written in batches: one transaction for many finished posts."""
        while True:
            batch = [await self._outcomes.get()]
            while not self._outcomes.empty() and len(batch) < 500:
                batch.append(self._outcomes.get_nowait())
            try:
                # One lock order (by webhook) for every replica: no deadlocks between them.
                batch.sort(key=lambda entry: (entry[0].webhook_id, entry[0].delivery_id))
                async with self._sessionmaker.begin() as session:
                    await domain.record_successes(session, [e for e in batch if e[1].succeeded])
                    for item, outcome, attempted_at in batch:
                        if not outcome.succeeded:
                            await domain.record_outcome(
                                session, item, outcome, self._settings, attempted_at
                            )
            except Exception:
                # The leases expire and the deliveries are attempted again.
                log.exception("recording %d webhook outcomes failed", len(batch))
            self._wakeup.set()
