"""A consumer service killed with SIGKILL in the middle of a batch, during a 2,000-employee
bulk sync, then restarted: every person ends in its projection exactly once, equal to the
source of truth."""

import asyncio
import signal
from collections.abc import Awaitable, Callable

import asyncpg
import httpx

from devstack.processes import wait_for_http
from devstack.stack import Stack
from tests.faults.support import sync_new_employees
from tests.helpers import eventually

Connect = Callable[[str], Awaitable[asyncpg.Connection]]
Org = tuple[str, dict[str, str]]
PEOPLE = 2_000
PER_REQUEST = 1_000


async def _people(conn: asyncpg.Connection, org_id: str) -> set[tuple[str, int]]:
    rows = await conn.fetch("SELECT external_id, version FROM person WHERE org_id = $1", org_id)
    return {(r["external_id"], r["version"]) for r in rows}


async def test_sigkill_mid_batch_then_restart_projects_everyone_exactly_once(
    stack: Stack, api: httpx.AsyncClient, org: Org, service_db: Connect
) -> None:
    org_id, key = org
    matching = stack.processes["matching"]
    assert matching.process is not None
    profiles_db = await service_db("profiles")
    matching_db = await service_db("matching")
    try:
        await sync_new_employees(api, key, "B", 0, PER_REQUEST)
        await eventually(
            lambda: _count_is(matching_db, org_id, PER_REQUEST), timeout=60, interval=0.5
        )
        # A write lock on the projection holds the consumer inside its next batch: its
        # transaction (inbox claims and all) is open when the process dies.
        lock = matching_db.transaction()
        await lock.start()
        await matching_db.execute("LOCK TABLE person IN EXCLUSIVE MODE")
        await sync_new_employees(api, key, "B", PER_REQUEST, PER_REQUEST)

        async def consumer_mid_batch() -> bool:
            return bool(
                await matching_db.fetchval(
                    "SELECT count(*) FROM pg_locks"
                    " WHERE relation = 'person'::regclass AND NOT granted"
                )
            )

        await eventually(consumer_mid_batch, timeout=30)
        matching.signal(signal.SIGKILL)
        await asyncio.to_thread(matching.process.wait, 10)
        await lock.rollback()
        assert len(await _people(matching_db, org_id)) == PER_REQUEST  # nothing of the batch
    finally:
        if matching.process.poll() is not None:
            matching.start()
            await asyncio.to_thread(
                wait_for_http, f"{stack.url('matching')}/readyz", 90, matching.process
            )
    try:
        source = await _people(profiles_db, org_id)
        assert len(source) == PEOPLE
        await eventually(lambda: _count_is(matching_db, org_id, PEOPLE), timeout=60, interval=0.5)
        # Exactly once, each at the version profiles holds: no one missing, doubled or stale.
        assert await _people(matching_db, org_id) == source
        handled = await matching_db.fetchval(
            "SELECT count(*) FROM person WHERE org_id = $1", org_id
        )
        assert handled == PEOPLE
    finally:
        await profiles_db.close()
        await matching_db.close()


async def _count_is(conn: asyncpg.Connection, org_id: str, expected: int) -> bool:
    count = await conn.fetchval("SELECT count(*) FROM person WHERE org_id = $1", org_id)
    assert count <= expected, f"{count} projected, more than the {expected} synced"
    return bool(count == expected)
