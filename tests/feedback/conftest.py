"""Fixtures of the feedback tests that run domain code on a real (throwaway) database."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import make_engine, make_sessionmaker, migrate

MIGRATIONS = Path(__file__).parents[2] / "services" / "feedback" / "migrations"


@pytest.fixture
async def session(scratch_db: str) -> AsyncIterator[AsyncSession]:
    """A session on a scratch database migrated to feedback's schema."""
    await migrate(scratch_db, MIGRATIONS)
    engine = make_engine(scratch_db)
    async with make_sessionmaker(engine)() as s:
        yield s
    await engine.dispose()
