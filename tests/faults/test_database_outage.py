"""One service's database goes away (connections refused, open ones terminated) and comes
back: requests fail fast with 503 problem+json meanwhile, and everything recovers by itself,
the relay included. The machine's PostgreSQL server keeps running (other work shares it):
only this database stops taking connections."""

import secrets
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from devstack.stack import Stack
from tests.conftest import POSTGRES
from tests.helpers import eventually
from tests.profiles.test_employees import employee

Org = tuple[str, dict[str, str]]


async def _allow_connections(admin: asyncpg.Connection, database: str, allow: bool) -> None:
    # Superusers ignore REVOKE CONNECT; ALLOW_CONNECTIONS holds for every role.
    await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allow).lower()}')
    if not allow:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )


@pytest.fixture
async def server_admin() -> AsyncIterator[asyncpg.Connection]:
    """A connection to the server's maintenance database."""
    conn = await asyncpg.connect(f"{POSTGRES.replace('+asyncpg', '')}/postgres")
    yield conn
    await conn.close()


async def test_requests_fail_fast_with_503_then_everything_recovers(
    stack: Stack, api: httpx.AsyncClient, org: Org, server_admin: asyncpg.Connection
) -> None:
    org_id, key = org
    database = f"{stack.database_prefix}_profiles"
    before = await api.put("/v1/employees/E-BEFORE", json=employee(), headers=key)
    assert before.status_code == 201, before.text
    await _allow_connections(server_admin, database, False)
    try:
        for path in ("/v1/employees/E-DOWN", "/v1/employees/E-BEFORE"):
            started = time.monotonic()
            down = await api.put(path, json=employee(title="Down"), headers=key)
            elapsed = time.monotonic() - started
            assert down.status_code == 503, down.text
            assert down.headers["content-type"].startswith("application/problem+json")
            assert down.json()["status"] == 503 and "Retry-After" in down.headers
            assert elapsed < 5, f"took {elapsed:.1f}s to fail"
        ready = await httpx.AsyncClient().get(f"{stack.url('profiles')}/readyz")
        assert ready.status_code == 503
    finally:
        await _allow_connections(server_admin, database, True)

    async def accepted() -> bool:
        answer = await api.put("/v1/employees/E-AFTER", json=employee(), headers=key)
        return answer.status_code == 201

    await eventually(accepted, timeout=15, interval=0.5)
    nothing_lost = await api.get("/v1/employees/E-BEFORE", headers=key)
    assert nothing_lost.json()["title"] == "Rear Admiral"  # the refused change left nothing
    # The relay reconnected by itself: the write after the outage reaches matching.
    matching = await asyncpg.connect(
        f"{POSTGRES.replace('+asyncpg', '')}/{stack.database_prefix}_matching"
    )
    try:

        async def projected() -> bool:
            rows = await matching.fetch("SELECT external_id FROM person WHERE org_id = $1", org_id)
            return {r["external_id"] for r in rows} == {"E-BEFORE", "E-AFTER"}

        await eventually(projected, timeout=30)
    finally:
        await matching.close()


async def test_the_gateway_without_its_database_answers_503_then_recovers(
    stack: Stack, api: httpx.AsyncClient, org: Org, server_admin: asyncpg.Connection
) -> None:
    _, key = org
    # Well-formed but never seen: only the database could say whether it is a key.
    fresh = {"Authorization": f"Bearer mbk_{uuid.uuid4().hex}_{secrets.token_urlsafe(32)}"}
    database = f"{stack.database_prefix}_gateway"
    await _allow_connections(server_admin, database, False)
    try:
        # Rate limits and key lookups live in the gateway's database.
        for headers in (key, fresh):
            started = time.monotonic()
            down = await api.get("/v1/employees", headers=headers)
            assert down.status_code == 503, down.text
            assert down.headers["content-type"].startswith("application/problem+json")
            assert time.monotonic() - started < 5
    finally:
        await _allow_connections(server_admin, database, True)

    async def served() -> bool:
        return (await api.get("/v1/employees", headers=key)).status_code == 200

    await eventually(served, timeout=15, interval=0.5)
