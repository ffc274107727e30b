"""Database plumbing that replicas of one service share."""

import asyncio
import uuid

from shared.db import SHARED_MIGRATIONS, drop_database, ensure_database, migrate

POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432"


async def test_replicas_starting_together_create_and_migrate_once() -> None:
    url = f"{POSTGRES}/mbtest_race_{uuid.uuid4().hex[:8]}"
    try:
        await asyncio.gather(*(ensure_database(url) for _ in range(6)))
        applied = await asyncio.gather(*(migrate(url, SHARED_MIGRATIONS) for _ in range(6)))
        assert sorted(len(a) for a in applied) == [0, 0, 0, 0, 0, 1]
    finally:
        await drop_database(url)
