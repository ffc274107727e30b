"""`python -m shared.migrate <service>` migrates once per release, and a service told not
to migrate at start refuses to serve an unmigrated database."""

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.db import SHARED_MIGRATIONS, drop_database, pending_migrations
from shared.migrate import migrations_of
from shared.service import create_service_app
from shared.settings import ServiceSettings
from tests.conftest import POSTGRES, RUN_ID

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def fresh_url() -> AsyncIterator[str]:
    """The URL of a database that does not exist yet (dropped afterwards)."""
    url = f"{POSTGRES}/mbtest_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    yield url
    await drop_database(url)


def _run_migrate(service: str, url: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "shared.migrate", service],
        cwd=ROOT,
        env={**os.environ, "MENTORBUS_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_the_entry_point_creates_and_migrates_once(fresh_url: str) -> None:
    directories = (SHARED_MIGRATIONS, migrations_of("sessions"))
    first = _run_migrate("sessions", fresh_url)
    assert await pending_migrations(fresh_url, *directories) == []
    assert "applied shared/0001_outbox_inbox" in first and "applied sessions/0001_init" in first
    second = _run_migrate("sessions", fresh_url)
    assert "applied " not in second and "0 migration(s) applied" in second


async def test_a_service_that_does_not_migrate_refuses_pending_migrations(
    fresh_url: str,
) -> None:
    migrations = migrations_of("feedback")
    _run_migrate("profiles", fresh_url)  # the database exists, feedback's tables do not
    pending = await pending_migrations(fresh_url, SHARED_MIGRATIONS, migrations)
    assert pending and all(v.startswith("feedback/") for v in pending)
    settings = ServiceSettings(
        service_name="feedback", database_url=fresh_url, migrate_on_start=False
    )
    app = create_service_app(settings=settings, routers=[], migrations=migrations)
    with pytest.raises(RuntimeError, match="migration\\(s\\) pending"):
        async with app.router.lifespan_context(app):
            pass
    # Nothing was applied behind the operator's back.
    assert await pending_migrations(fresh_url, SHARED_MIGRATIONS, migrations) == pending
