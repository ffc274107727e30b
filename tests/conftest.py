"""Fixtures on the real parts: a Tansu broker on a free port, throwaway PostgreSQL
databases, and the five services running as processes, exactly as the local run does."""

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from devstack.broker import Broker
from devstack.stack import SERVICES, Stack
from shared.db import SHARED_MIGRATIONS, asyncpg_dsn, drop_database, ensure_database, migrate
from tests.helpers import EXTERNAL_BROKER, IDENTITY_PROVIDER, TokenIssuer, create_org

POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432"
RUN_ID = secrets.token_hex(3)

# Webhooks to the tests' loopback receivers, with retries in fractions of a second and a
# webhook disabled after 4 failures in a row (production: about a day of them).
WEBHOOK_TEST_ENV = {
    "MENTORBUS_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
    "MENTORBUS_WEBHOOK_ALLOW_HTTP": "true",
    "MENTORBUS_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
    "MENTORBUS_WEBHOOK_RETRY_MAX_DELAY_SECONDS": "1",
    "MENTORBUS_WEBHOOK_MAX_ATTEMPTS": "6",
    "MENTORBUS_WEBHOOK_DISABLE_AFTER_FAILURES": "4",
    "MENTORBUS_WEBHOOK_DISABLE_AFTER_SECONDS": "0",
    "MENTORBUS_WEBHOOK_IDLE_POLL_SECONDS": "0.2",
    "MENTORBUS_WEBHOOK_TIMEOUT_SECONDS": "3",
}


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where broker and service logs of this run go."""
    return tmp_path_factory.mktemp("logs")


@dataclass(frozen=True)
class ExternalBroker:
    """A Kafka-protocol broker the suite did not start (named by the environment)."""

    bootstrap_servers: str


@pytest.fixture(scope="session")
def broker(log_dir: Path) -> Iterator[Broker | ExternalBroker]:
    """One broker for the session: the embedded in-memory Tansu, or the one named by
    `MENTORBUS_TEST_KAFKA_BOOTSTRAP_SERVERS` (e.g. Apache Kafka in a CI that has it).
    Outage tests always start embedded brokers of their own, which they can stop."""
    if EXTERNAL_BROKER:
        yield ExternalBroker(EXTERNAL_BROKER)
        return
    b = Broker(log_dir)
    b.start()
    yield b
    b.stop()


@pytest.fixture
async def scratch_db() -> AsyncIterator[str]:
    """A throwaway database with the shared tables (outbox, inbox) migrated in."""
    url = f"{POSTGRES}/mbtest_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    await ensure_database(url)
    await migrate(url, SHARED_MIGRATIONS)
    yield url
    await drop_database(url)


@pytest.fixture(scope="session")
def identity_provider() -> TokenIssuer:
    """Signs end users' tokens; the session's gateway trusts it."""
    return IDENTITY_PROVIDER


@pytest.fixture(scope="session")
def stack(
    broker: Broker | ExternalBroker, log_dir: Path, identity_provider: TokenIssuer
) -> Iterator[Stack]:
    """The five services as processes, on free ports, with throwaway databases."""
    s = Stack.on_free_ports(
        bootstrap_servers=broker.bootstrap_servers,
        embedded_broker=isinstance(broker, Broker),
        admin_token=secrets.token_urlsafe(32),
        identity_secret=secrets.token_urlsafe(32),
        log_dir=log_dir,
        database_prefix=f"mbtest_{RUN_ID}",
        # Read-your-writes waits longer than its default 5 s here: a test machine shared by
        # parallel suites can hold the event thread back for seconds.
        extra_env={
            **WEBHOOK_TEST_ENV,
            **identity_provider.env(),
            "MENTORBUS_PROJECTION_WAIT_SECONDS": "10",
            # The gateway must outwait a service's projection wait (a true 404 comes late).
            "MENTORBUS_UPSTREAM_TIMEOUT_SECONDS": "25",
        },
    )
    try:
        s.start()
        yield s
    finally:
        s.stop()
        asyncio.run(_drop_stack_databases(s))


async def _drop_stack_databases(s: Stack) -> None:
    for service in SERVICES:
        await drop_database(s.database_url(service))


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the public API (the gateway)."""
    async with httpx.AsyncClient(base_url=stack.url(), timeout=15) as client:
        yield client


@pytest.fixture
def admin(stack: Stack) -> dict[str, str]:
    """Headers of the platform admin."""
    return {"Authorization": f"Bearer {stack.admin_token}"}


@pytest.fixture
async def org(api: httpx.AsyncClient, admin: dict[str, str]) -> tuple[str, dict[str, str]]:
    """A fresh tenant per test: (organization id, API key headers)."""
    return await create_org(api, admin)


@pytest.fixture
def service_db(stack: Stack) -> Callable[[str], Awaitable[asyncpg.Connection]]:
    """Open a connection to a service's own database (tests only: to see its projections)."""

    async def connect(service: str) -> asyncpg.Connection:
        return await asyncpg.connect(asyncpg_dsn(stack.database_url(service)))

    return connect
