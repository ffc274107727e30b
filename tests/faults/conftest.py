"""Fixtures of the fault tests."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from devstack.postgres import PostgresCluster


@pytest.fixture
async def private_postgres() -> AsyncIterator[PostgresCluster]:
    """A PostgreSQL server of the test's own (started; deleted afterwards): one it may stop,
    and whose connections no other work on the machine competes for."""
    cluster = PostgresCluster()
    try:
        await asyncio.to_thread(cluster.start)
        yield cluster
    finally:
        await asyncio.to_thread(cluster.destroy)
