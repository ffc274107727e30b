"""Readiness that does not lie (issue 23): a service is ready only once its consumer has
joined its group; a broker that refuses the consumer for good (here: Apache Kafka's
session-timeout floor) leaves it not ready with the reason, counted in /metrics; the
local run keeps the user's timeouts on a broker that is not the embedded one."""

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from devstack.broker import Broker
from devstack.processes import free_port
from devstack.stack import FAST_GROUP_ENV, Stack, group_join_defaults
from shared.db import drop_database
from tests.helpers import eventually
from tests.kafka_floor_proxy import SessionFloorProxy

SESSION = "MENTORBUS_KAFKA_SESSION_TIMEOUT_MS"
HEARTBEAT = "MENTORBUS_KAFKA_HEARTBEAT_INTERVAL_MS"


@pytest.fixture
async def floored_broker(log_dir: Path) -> AsyncIterator[str]:
    """A real broker behind a proxy that refuses session timeouts under 6000 ms."""
    proxy_port = free_port()
    broker = Broker(log_dir / "floored", advertised_port=proxy_port)
    broker.start()
    proxy = SessionFloorProxy(proxy_port, broker.port, floor_ms=6000)
    proxy.start()
    yield broker.bootstrap_servers
    proxy.stop()
    broker.stop()


def test_fast_joins_only_on_the_embedded_broker_and_never_over_the_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(SESSION, raising=False)
    monkeypatch.delenv(HEARTBEAT, raising=False)
    assert group_join_defaults(embedded_broker=True) == FAST_GROUP_ENV
    assert group_join_defaults(embedded_broker=False) == {}
    monkeypatch.setenv(SESSION, "45000")
    assert SESSION not in group_join_defaults(embedded_broker=True)
    stack = Stack(bootstrap_servers="kafka:9092", admin_token="t", log_dir=Path("/tmp"))
    assert stack.env("matching").get(SESSION) is None  # the process inherits the user's


async def _readiness(url: str) -> tuple[int, str]:
    async with httpx.AsyncClient(timeout=5) as client:
        try:
            response = await client.get(f"{url}/readyz")
        except httpx.TransportError:
            return 0, ""
        return response.status_code, response.text


async def test_refused_consumer_is_not_ready_with_the_reason_then_recovers(
    floored_broker: str, log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SESSION, raising=False)
    monkeypatch.delenv(HEARTBEAT, raising=False)
    stack = Stack.on_free_ports(
        bootstrap_servers=floored_broker,
        admin_token=secrets.token_urlsafe(32),
        log_dir=log_dir / "floored",
        database_prefix=f"mbtest_ready_{secrets.token_hex(3)}",
        embedded_broker=True,  # so the fast 3000 ms joins apply, which this broker refuses
    )
    url = stack.url("feedback")
    try:
        stack.start(services=("feedback",), wait=False)

        async def refused() -> bool:
            status, body = await _readiness(url)
            return status == 503 and "InvalidSessionTimeoutError" in body

        await eventually(refused, timeout=60)
        _, body = await _readiness(url)
        assert "MENTORBUS_KAFKA_SESSION_TIMEOUT_MS" in body  # says what to change
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"{url}/metrics")).text
        assert 'mentorbus_kafka_fatal_errors_total{consumer="mentorbus.feedback"' in metrics
        # Still refused a while later: never reported ready meanwhile.
        await asyncio.sleep(2)
        assert (await _readiness(url))[0] == 503

        # The operator fixes the setting and restarts the service: ready once joined.
        stack.stop()
        monkeypatch.setenv(SESSION, "6000")
        monkeypatch.setenv(HEARTBEAT, "1000")
        stack.start(services=("feedback",), wait=False)

        async def ready() -> bool:
            return (await _readiness(url))[0] == 200

        await eventually(ready, timeout=90)
    finally:
        stack.stop()
        await drop_database(stack.database_url("feedback"))
