"""SIGTERM while a request is in flight: the service stops listening, finishes the
request, its relay publishes what the request committed, and it exits cleanly."""

import asyncio
import signal
import socket
from collections.abc import Awaitable, Callable

import asyncpg
import httpx

from devstack.processes import wait_for_http
from devstack.stack import Stack
from tests.helpers import eventually
from tests.profiles.test_employees import employee

Connect = Callable[[str], Awaitable[asyncpg.Connection]]
Org = tuple[str, dict[str, str]]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


async def test_a_slow_request_in_flight_completes_across_sigterm(
    stack: Stack, api: httpx.AsyncClient, org: Org, service_db: Connect
) -> None:
    org_id, key = org
    profiles = stack.processes["profiles"]
    assert profiles.process is not None
    holder = await service_db("profiles")
    matching = await service_db("matching")
    try:
        # Holding a write lock on `person` keeps the upsert below in flight for as long
        # as the test wants.
        lock = holder.transaction()
        await lock.start()
        await holder.execute("LOCK TABLE person IN EXCLUSIVE MODE")
        request = asyncio.create_task(
            api.put("/v1/employees/E-SIGTERM", json=employee(), headers=key, timeout=30)
        )

        async def waiting_on_the_lock() -> bool:
            return bool(
                await holder.fetchval(
                    "SELECT count(*) FROM pg_locks"
                    " WHERE relation = 'person'::regclass AND NOT granted"
                )
            )

        await eventually(waiting_on_the_lock, timeout=10)
        profiles.signal(signal.SIGTERM)
        # It stops taking new connections at once, while the request is still held.
        await eventually(
            lambda: asyncio.to_thread(lambda: not _listening(stack.ports["profiles"])), timeout=5
        )
        assert not request.done()
        await lock.commit()

        response = await request
        assert response.status_code == 201, response.text
        returncode = await asyncio.to_thread(profiles.process.wait, 30)
        # uvicorn re-raises the SIGTERM it handled once its shutdown is complete.
        assert returncode in (0, -signal.SIGTERM), profiles.tail()
        assert "Application shutdown complete" in profiles.tail(20)
        # The relay sent what the request committed before it let the process go.
        unpublished = await holder.fetchval(
            "SELECT count(*) FROM outbox_message WHERE published_at IS NULL"
        )
        assert unpublished == 0
    finally:
        await holder.close()
        if profiles.process.poll() is not None:
            profiles.start()
            await asyncio.to_thread(
                wait_for_http, f"{stack.url('profiles')}/readyz", 90, profiles.process
            )

    async def projected() -> bool:
        return bool(
            await matching.fetchval(
                "SELECT count(*) FROM person WHERE org_id = $1 AND external_id = 'E-SIGTERM'",
                org_id,
            )
        )

    try:
        await eventually(projected, timeout=20)
    finally:
        await matching.close()
    again = await api.get("/v1/employees/E-SIGTERM", headers=key)
    assert again.status_code == 200
