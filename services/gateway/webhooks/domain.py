"""Webhook rules: subscriptions, secrets, which events become deliveries, claiming due
deliveries, and what an attempt's outcome does (retry, give up, disable). No HTTP here."""

import contextlib
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.webhooks import ssrf
from services.gateway.webhooks.models import Webhook, WebhookDelivery
from services.gateway.webhooks.schemas import WebhookIn, WebhookPatch
from services.gateway.webhooks.secrets import SecretBox, new_secret
from services.gateway.webhooks.settings import WebhookSettings
from shared.db import utcnow
from shared.errors import Conflict, FieldError, InvalidInput, NotFound
from shared.events import CloudEvent, EventData, UnknownEventType, WebhookDisabledV1, event_model
from shared.outbox import add_event
from shared.pagination import CreatedAfter

SOURCE = "mentorbus/gateway"


def _validate_event_types(event_types: list[str]) -> list[str]:
    errors = []
    for index, event_type in enumerate(event_types):
        try:
            event_model(event_type)
        except UnknownEventType:
            errors.append(FieldError(f"event_types.{index}", f"unknown event type {event_type}"))
    if errors:
        raise InvalidInput(errors)
    return sorted(set(event_types))


async def _validate_url(url: str, settings: WebhookSettings) -> str:
    reason = await ssrf.check_url(
        url, allow_private=settings.allow_private_targets, allow_http=settings.allow_http
    )
    if reason:
        raise InvalidInput([FieldError("url", reason)])
    return url


async def create_webhook(
    session: AsyncSession,
    org_id: uuid.UUID,
    body: WebhookIn,
    settings: WebhookSettings,
    box: SecretBox,
) -> tuple[Webhook, str]:
    """Subscribe; returns the webhook and its signing secret, which is never shown again."""
    event_types = _validate_event_types(body.event_types)
    url = await _validate_url(body.url, settings)
    secret = new_secret()
    webhook = Webhook(
        id=uuid.uuid4(),
        org_id=org_id,
        url=url,
        description=body.description,
        event_types=event_types,
        status="active",
        secret_encrypted=box.seal(secret),
        consecutive_failures=0,
    )
    session.add(webhook)
    await session.flush()
    return webhook, secret


async def get_webhook(
    session: AsyncSession, org_id: uuid.UUID, webhook_id: uuid.UUID, *, lock: bool = False
) -> Webhook:
    """The organization's webhook; another organization's is a 404 like a missing one."""
    webhook = await session.get(Webhook, webhook_id, with_for_update=lock)
    if webhook is None or webhook.org_id != org_id:
        raise NotFound(f"webhook {webhook_id} not found")
    return webhook


async def list_webhooks(
    session: AsyncSession, org_id: uuid.UUID, *, after: CreatedAfter | None, limit: int
) -> list[Webhook]:
    """The organization's webhooks, oldest first."""
    query = (
        select(Webhook)
        .where(Webhook.org_id == org_id)
        .order_by(Webhook.created_at, Webhook.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(
            func.row(Webhook.created_at, Webhook.id) > func.row(after.created_at, after.id)
        )
    return list((await session.scalars(query)).all())


async def update_webhook(
    session: AsyncSession,
    org_id: uuid.UUID,
    webhook_id: uuid.UUID,
    patch: WebhookPatch,
    settings: WebhookSettings,
) -> Webhook:
    """Change a webhook; enabling a disabled one resets its failure run and resumes its
    pending deliveries at once."""
    webhook = await get_webhook(session, org_id, webhook_id, lock=True)
    if patch.url is not None:
        webhook.url = await _validate_url(patch.url, settings)
    if patch.event_types is not None:
        webhook.event_types = _validate_event_types(patch.event_types)
    if patch.description is not None:
        webhook.description = patch.description
    if patch.status == "active" and webhook.status != "active":
        webhook.status = "active"
        webhook.disabled_reason = None
        webhook.consecutive_failures = 0
        webhook.failing_since = None
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.webhook_id == webhook.id, WebhookDelivery.status == "pending")
            .values(next_attempt_at=utcnow())
        )
        await _wake_workers(session)
    elif patch.status == "disabled" and webhook.status != "disabled":
        webhook.status = "disabled"
        webhook.disabled_reason = "disabled by request"
        await _unschedule_pending(session, webhook.id)
    webhook.updated_at = utcnow()
    return webhook


async def delete_webhook(session: AsyncSession, org_id: uuid.UUID, webhook_id: uuid.UUID) -> None:
    """Unsubscribe; its deliveries go with it."""
    webhook = await get_webhook(session, org_id, webhook_id)
    await session.execute(delete(Webhook).where(Webhook.id == webhook.id))


async def rotate_secret(
    session: AsyncSession,
    org_id: uuid.UUID,
    webhook_id: uuid.UUID,
    grace: timedelta,
    box: SecretBox,
) -> tuple[Webhook, str]:
    """A new signing secret; deliveries carry signatures by both the new and the previous
    secret until the grace period ends (then only the new one)."""
    webhook = await get_webhook(session, org_id, webhook_id, lock=True)
    secret = new_secret()
    if grace > timedelta(0):
        webhook.previous_secret_encrypted = webhook.secret_encrypted
        webhook.previous_secret_expires_at = utcnow() + grace
    else:
        webhook.previous_secret_encrypted = None
        webhook.previous_secret_expires_at = None
    webhook.secret_encrypted = box.seal(secret)
    webhook.updated_at = utcnow()
    return webhook, secret


async def list_deliveries(
    session: AsyncSession,
    org_id: uuid.UUID,
    webhook_id: uuid.UUID,
    *,
    before_seq: int | None,
    limit: int,
) -> list[WebhookDelivery]:
    """A webhook's delivery log, newest first."""
    await get_webhook(session, org_id, webhook_id)
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id)
        .order_by(WebhookDelivery.seq.desc())
        .limit(limit)
    )
    if before_seq is not None:
        query = query.where(WebhookDelivery.seq < before_seq)
    return list((await session.scalars(query)).all())


async def redeliver(
    session: AsyncSession, org_id: uuid.UUID, webhook_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery:
    """Post a delivery again now (one attempt, whatever its state); its log keeps counting."""
    webhook = await get_webhook(session, org_id, webhook_id)
    if webhook.status != "active":
        raise Conflict("the webhook is disabled: enable it (PATCH status active) first")
    delivery = await session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None or delivery.webhook_id != webhook.id:
        raise NotFound(f"delivery {delivery_id} not found")
    if delivery.status != "pending":
        delivery.status = "pending"
        delivery.attempt_limit = delivery.attempts + 1
    delivery.next_attempt_at = utcnow()
    await _wake_workers(session)
    return delivery


async def _unschedule_pending(session: AsyncSession, webhook_id: uuid.UUID) -> None:
    # No attempt is due while the webhook is disabled (enabling it schedules them again);
    # unscheduled rows also stay out of the claims' index walk.
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.status == "pending")
        .values(next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )


async def _wake_workers(session: AsyncSession) -> None:
    # Delivered on commit, to every gateway replica listening.
    await session.execute(text("SELECT pg_notify('webhook_delivery', '')"))


async def subscribed(session: AsyncSession, routes: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Of these (organization id, event type) pairs, those some active webhook subscribes
    to (the consumer's interest: events of the others are skipped before parsing)."""
    orgs: dict[str, uuid.UUID] = {}
    for org, _ in routes:
        with contextlib.suppress(ValueError):
            orgs[org] = uuid.UUID(org)
    if not orgs:
        return set()
    rows = await session.execute(
        select(Webhook.org_id, Webhook.event_types).where(
            Webhook.org_id.in_(set(orgs.values())), Webhook.status == "active"
        )
    )
    wanted = {(org_id, event_type) for org_id, types in rows for event_type in types}
    return {(org, event_type) for org, event_type in routes
            if org in orgs and (orgs[org], event_type) in wanted}  # fmt: skip


async def record_deliveries(session: AsyncSession, event: CloudEvent, data: EventData) -> None:
    """Consumer handler for every event type: a pending delivery for each active webhook
    of the event's organization subscribed to its type, in the inbox row's transaction."""
    try:
        org_id = uuid.UUID(event.orgid)
    except ValueError:
        return  # not a tenant's event: nobody subscribed to it
    # A consumer batch is one transaction: look each (organization, type) up once in it.
    memo: dict[tuple[uuid.UUID, str], list[uuid.UUID]] = session.info.setdefault(
        "webhook_subscribers", {}
    )
    webhook_ids = memo.get((org_id, event.type))
    if webhook_ids is None:
        webhook_ids = list(
            (
                await session.scalars(
                    select(Webhook.id).where(
                        Webhook.org_id == org_id,
                        Webhook.status == "active",
                        Webhook.event_types.any_() == event.type,
                    )
                )
            ).all()
        )
        memo[(org_id, event.type)] = webhook_ids
    if not webhook_ids:
        return
    payload = event.model_dump_json()
    now = utcnow()
    # Added, not inserted: the batch's commit flushes every delivery in one INSERT.
    session.add_all(
        WebhookDelivery(
            id=uuid.uuid4(),
            webhook_id=webhook_id,
            org_id=org_id,
            event_id=event.id,
            event_type=event.type,
            aggregate_key=event.subject,
            payload=payload,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        for webhook_id in webhook_ids
    )


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery leased to this worker: everything needed to post it."""

    delivery_id: uuid.UUID
    webhook_id: uuid.UUID
    event_id: uuid.UUID
    url: str
    payload: str
    secrets: list[str]


_CLAIM = text(
    """
    WITH due AS (
        SELECT d.id FROM webhook_delivery d JOIN webhook w ON w.id = d.webhook_id
        WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND w.status = 'active'
          AND NOT EXISTS (
              SELECT 1 FROM webhook_delivery e
              WHERE e.webhook_id = d.webhook_id AND e.aggregate_key = d.aggregate_key
                AND e.status = 'pending' AND e.seq < d.seq)
        ORDER BY d.next_attempt_at, d.seq
        LIMIT :limit
        FOR UPDATE OF d SKIP LOCKED
    )
    UPDATE webhook_delivery d SET next_attempt_at = now() + make_interval(secs => :lease)
    FROM due, webhook w
    WHERE d.id = due.id AND w.id = d.webhook_id
    RETURNING d.id, d.webhook_id, d.event_id, d.payload, w.url, w.secret_encrypted,
              w.previous_secret_encrypted, w.previous_secret_expires_at
    """
)


async def claim_due(
    session: AsyncSession, limit: int, lease_seconds: float, box: SecretBox
) -> list[Claimed]:
    """Lease up to `limit` due deliveries. SKIP LOCKED lets replicas claim side by side,
    never the same row; a pending earlier delivery of the same aggregate to the same
    webhook holds a later one back, so one aggregate's events arrive in order."""
    # The planner underestimates how many rows are due and sorts them all (O(pending) per
    # claim: 0.4 s at 20k pending); without a sort it walks the (next_attempt_at, seq)
    # index and stops at `limit` (under 1 ms). SET LOCAL ends with this transaction.
    await session.execute(text("SET LOCAL enable_sort = off"))
    rows = (await session.execute(_CLAIM, {"limit": limit, "lease": lease_seconds})).all()
    now = utcnow()
    opened: dict[bytes, str] = {}  # a claim is mostly one webhook's rows: decrypt once

    def open_secret(sealed: bytes) -> str:
        if sealed not in opened:
            opened[sealed] = box.open(sealed)
        return opened[sealed]

    claimed = []
    for row in rows:
        secrets = [open_secret(row.secret_encrypted)]
        if row.previous_secret_encrypted is not None and (
            row.previous_secret_expires_at is None or row.previous_secret_expires_at > now
        ):
            secrets.append(open_secret(row.previous_secret_encrypted))
        claimed.append(Claimed(row.id, row.webhook_id, row.event_id, row.url, row.payload, secrets))
    return claimed


async def purge_delivery_log(session: AsyncSession, older_than: timedelta) -> int:
    """Delete finished deliveries (succeeded or failed) created longer ago than
    `older_than`; pending ones stay whatever their age."""
    result = await session.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.status != "pending",
            WebhookDelivery.created_at < utcnow() - older_than,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def retry_delay(attempt: int, settings: WebhookSettings) -> float:
    """Seconds before the attempt after `attempt` (1-based): exponential, capped, with
    +-25% jitter so a recovering endpoint is not hit by every retry at once."""
    delay = min(settings.retry_base_seconds * 2 ** (attempt - 1), settings.retry_max_delay_seconds)
    return delay * random.uniform(0.75, 1.25)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt got: a status code, or an error before any answer."""

    status_code: int | None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        """A 2xx answer."""
        return self.status_code is not None and 200 <= self.status_code < 300


async def record_successes(
    session: AsyncSession, succeeded: list[tuple[Claimed, Outcome, datetime]]
) -> None:
    """Log many successful attempts in two statements (the common case, kept cheap): the
    deliveries are done, and their webhooks' failure runs (if any) end."""
    if not succeeded:
        return
    now = utcnow()
    table = cast(Table, WebhookDelivery.__table__)  # Core: one executemany, no ORM bulk rules
    await session.execute(
        update(table)
        .where(table.c.id == bindparam("delivery_id"))
        .values(
            status="succeeded",
            attempts=table.c.attempts + 1,
            last_status_code=bindparam("code"),
            last_error=None,
            last_attempt_at=bindparam("attempted_at"),
            delivered_at=now,
            next_attempt_at=None,
        ),
        [
            {"delivery_id": c.delivery_id, "code": o.status_code, "attempted_at": at}
            for c, o, at in succeeded
        ],
    )
    # Only webhooks that were failing are touched: no row lock per success.
    await session.execute(
        update(Webhook)
        .where(
            Webhook.id.in_(sorted({c.webhook_id for c, _, _ in succeeded})),
            Webhook.consecutive_failures > 0,
        )
        .values(consecutive_failures=0, failing_since=None)
    )


async def record_outcome(
    session: AsyncSession,
    claimed: Claimed,
    outcome: Outcome,
    settings: WebhookSettings,
    attempted_at: datetime,
) -> None:
    """Log an attempt; schedule the retry or give up; disable the webhook (announcing it)
    once its failures make a run long enough."""
    delivery = await session.get(WebhookDelivery, claimed.delivery_id, with_for_update=True)
    webhook = await session.get(Webhook, claimed.webhook_id, with_for_update=True)
    if delivery is None or webhook is None:
        return  # deleted meanwhile
    now = utcnow()
    delivery.attempts += 1
    delivery.last_status_code = outcome.status_code
    delivery.last_error = outcome.error
    delivery.last_attempt_at = attempted_at
    if outcome.succeeded:
        delivery.status = "succeeded"
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        webhook.consecutive_failures = 0
        webhook.failing_since = None
        return
    if delivery.attempts >= (delivery.attempt_limit or settings.max_attempts):
        delivery.status = "failed"
        delivery.next_attempt_at = None
    else:
        delivery.next_attempt_at = now + timedelta(seconds=retry_delay(delivery.attempts, settings))
    webhook.consecutive_failures += 1
    webhook.failing_since = webhook.failing_since or attempted_at
    failing_for = (now - webhook.failing_since).total_seconds()
    if (
        webhook.status == "active"
        and webhook.consecutive_failures >= settings.disable_after_failures
        and failing_for >= settings.disable_after_seconds
    ):
        webhook.status = "disabled"
        webhook.disabled_reason = (
            f"{webhook.consecutive_failures} failed attempts in a row over {failing_for:.0f} s"
        )
        webhook.updated_at = now
        await session.flush()
        await _unschedule_pending(session, webhook.id)
        add_event(
            session,
            WebhookDisabledV1(
                webhook_id=webhook.id,
                url=webhook.url,
                reason=webhook.disabled_reason,
                consecutive_failures=webhook.consecutive_failures,
                failing_since=webhook.failing_since,
                disabled_at=now,
            ),
            source=SOURCE,
            orgid=webhook.org_id,
        )
