"""Rate-limit leases (services/gateway/ratelimit.py) on a real database, with two limiters
on it standing for two gateway replicas, and the API-key cache's shared lookups."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from services.gateway.auth import ApiKeyCache
from services.gateway.budgets import Budget
from services.gateway.ratelimit import LEASE_SHARE, RateLimited, RateLimiter, granted, lease_size
from shared.db import SHARED_MIGRATIONS, asyncpg_dsn, migrate
from shared.identity import Caller

GATEWAY_MIGRATIONS = Path(__file__).parents[2] / "services" / "gateway" / "migrations"


@pytest.fixture
async def pool(scratch_db: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a database with the gateway's tables."""
    await migrate(scratch_db, SHARED_MIGRATIONS, GATEWAY_MIGRATIONS)
    async with asyncpg.create_pool(asyncpg_dsn(scratch_db), min_size=1, max_size=4) as p:
        yield p


def test_a_lease_is_a_fiftieth_of_the_limit_and_never_more_than_fits() -> None:
    assert [lease_size(n) for n in (1, 5, 99, 100, 6000)] == [1, 1, 1, 2, 6000 // LEASE_SHARE]
    assert granted(limit=100, size=10, total=10) == 10  # the first lease
    assert granted(limit=100, size=10, total=105) == 5  # only what fits
    assert granted(limit=100, size=10, total=110) == 0  # spent


async def test_replicas_together_never_admit_more_than_the_limit(pool: asyncpg.Pool) -> None:
    limit = 1000
    budget = [Budget(f"key:{uuid.uuid4().hex}", limit, "key")]
    replicas = [RateLimiter(pool, 60), RateLimiter(pool, 60)]

    async def one(i: int) -> bool:
        try:
            await replicas[i % 2].hit(budget)
        except RateLimited as refused:
            assert refused.headers is not None and int(refused.headers["Retry-After"]) >= 1
            return False
        return True

    admitted = sum(await asyncio.gather(*(one(i) for i in range(1500))))
    # Never more than the limit; fewer by at most the other replica's unspent lease.
    assert limit - lease_size(limit) <= admitted <= limit
    # A lease per statement, not a statement per request.
    counted = await pool.fetchval(
        "SELECT hits FROM rate_limit_counter WHERE bucket = $1", budget[0].bucket
    )
    assert counted >= limit
    assert counted < limit + 3 * lease_size(limit)


async def test_a_small_limit_is_counted_exactly_across_replicas(pool: asyncpg.Pool) -> None:
    budget = [Budget(f"key:{uuid.uuid4().hex}", 5, "key")]
    a, b = RateLimiter(pool, 60), RateLimiter(pool, 60)
    answers = [await (a if i % 2 else b).hit(budget) for i in range(5)]
    assert [h["RateLimit"].split(";")[1] for h in answers] == [f"r={n}" for n in (4, 3, 2, 1, 0)]
    for replica in (a, b):
        with pytest.raises(RateLimited):
            await replica.hit(budget)


async def test_concurrent_misses_of_one_key_share_one_lookup() -> None:
    cache = ApiKeyCache(ttl_seconds=60, max_entries=10)
    caller = Caller(org_id=uuid.uuid4(), is_admin=False, scopes=("*",))
    key_id = uuid.uuid4()
    lookups = 0

    async def lookup() -> tuple[Caller, uuid.UUID] | None:
        nonlocal lookups
        lookups += 1
        await asyncio.sleep(0.05)
        return caller, key_id

    found = await asyncio.gather(*(cache.load(b"digest", lookup) for _ in range(20)))
    assert found == [caller] * 20 and lookups == 1
    assert await cache.load(b"digest", lookup) == caller and lookups == 1  # cached
    cache.forget(key_id)  # revoked through this replica: looked up again
    assert await cache.load(b"digest", lookup) == caller and lookups == 2

    async def unknown() -> tuple[Caller, uuid.UUID] | None:
        return None

    assert await cache.load(b"other", unknown) is None

    async def failing() -> tuple[Caller, uuid.UUID] | None:
        await asyncio.sleep(0.05)
        raise ConnectionError("database away")

    results = await asyncio.gather(
        *(cache.load(b"third", failing) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, ConnectionError) for r in results)
