"""Two delivery workers on one gateway database (two replicas): every delivery is posted
exactly once, and one aggregate's deliveries still arrive in order."""

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devstack.processes import free_port
from services.gateway.webhooks.delivery import DeliveryWorker
from services.gateway.webhooks.domain import purge_delivery_log
from services.gateway.webhooks.models import Webhook, WebhookDelivery
from services.gateway.webhooks.secrets import SecretBox, new_secret
from services.gateway.webhooks.settings import WebhookSettings
from shared.db import SHARED_MIGRATIONS, make_engine, make_sessionmaker, migrate, utcnow
from tests.helpers import eventually

GATEWAY_MIGRATIONS = Path(__file__).resolve().parents[2] / "services/gateway/migrations"


@pytest.fixture
async def gateway_db(scratch_db: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await migrate(scratch_db, SHARED_MIGRATIONS, GATEWAY_MIGRATIONS)
    engine = make_engine(scratch_db)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_two_workers_post_each_delivery_once_and_in_order(
    gateway_db: async_sessionmaker[AsyncSession], scratch_db: str
) -> None:
    received: list[str] = []  # webhook-id (the event id) of each post, in arrival order

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(0.005)  # a receiver that takes a moment: posts overlap
        received.append(request.headers["webhook-id"])
        return web.Response(status=200)

    port = free_port()
    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()

    settings = WebhookSettings(
        allow_private_targets=True, allow_http=True, concurrency=16, idle_poll_seconds=0.1
    )
    box = SecretBox(settings.secret_key)
    webhook_id, org_id = uuid.uuid4(), uuid.uuid4()
    aggregates = [f"agg-{n}" for n in range(10)]
    expected: dict[str, list[str]] = {a: [] for a in aggregates}
    async with gateway_db.begin() as session:
        session.add(
            Webhook(
                id=webhook_id, org_id=org_id, url=f"http://127.0.0.1:{port}/hook",
                event_types=["mentorbus.person.upserted.v1"], status="active",
                secret_encrypted=box.seal(new_secret()), consecutive_failures=0,
            )
        )  # fmt: skip
        await session.flush()
        for n in range(200):
            aggregate = aggregates[n % len(aggregates)]
            event_id = uuid.uuid4()
            expected[aggregate].append(str(event_id))
            session.add(
                WebhookDelivery(
                    id=uuid.uuid4(), webhook_id=webhook_id, org_id=org_id, event_id=event_id,
                    event_type="mentorbus.person.upserted.v1", aggregate_key=aggregate,
                    payload="{}", status="pending", attempts=0, next_attempt_at=utcnow(),
                )
            )  # fmt: skip
            await session.flush()  # one row at a time: `seq` follows the order above

    workers = [
        DeliveryWorker(settings=settings, database_url=scratch_db, sessionmaker=gateway_db, box=box)
        for _ in range(2)
    ]
    try:
        for worker in workers:
            worker.start()
        await eventually(lambda: _done(gateway_db), timeout=60)
    finally:
        for worker in workers:
            await worker.stop()
        await runner.cleanup()
    counts = Counter(received)
    assert len(counts) == 200
    assert set(counts.values()) == {1}, "a delivery was posted twice"
    for aggregate, in_order in expected.items():
        wanted = set(in_order)
        assert [r for r in received if r in wanted] == in_order, aggregate


async def _done(sessions: async_sessionmaker[AsyncSession]) -> bool:
    async with sessions() as session:
        left = await session.scalar(
            text("SELECT count(*) FROM webhook_delivery WHERE status <> 'succeeded'")
        )
    return left == 0


async def test_the_delivery_log_keeps_pending_and_recent_deliveries(
    gateway_db: async_sessionmaker[AsyncSession],
) -> None:
    box = SecretBox(WebhookSettings().secret_key)
    webhook_id, org_id = uuid.uuid4(), uuid.uuid4()
    old = utcnow() - timedelta(days=40)
    async with gateway_db.begin() as session:
        session.add(
            Webhook(
                id=webhook_id, org_id=org_id, url="https://example.com/", event_types=[],
                status="active", secret_encrypted=box.seal(new_secret()), consecutive_failures=0,
            )
        )  # fmt: skip
        await session.flush()
        for status, created in [("succeeded", old), ("failed", old), ("pending", old),
                                ("succeeded", utcnow())]:  # fmt: skip
            session.add(
                WebhookDelivery(
                    id=uuid.uuid4(), webhook_id=webhook_id, org_id=org_id, event_id=uuid.uuid4(),
                    event_type="t", aggregate_key="a", payload="{}", status=status, attempts=1,
                    created_at=created,
                )
            )  # fmt: skip
    async with gateway_db.begin() as session:
        assert await purge_delivery_log(session, timedelta(days=30)) == 2
    async with gateway_db() as session:
        left = (await session.execute(text("SELECT status FROM webhook_delivery"))).scalars()
        assert sorted(left) == ["pending", "succeeded"]
