"""Migrate one service's database, once per release, before its pods start.

    MENTORBUS_DATABASE_URL=postgresql+asyncpg://... python -m shared.migrate profiles

Creates the database if the user may (`CREATEDB`), then applies the shared migrations and
the service's own under the same advisory lock services take when they migrate at start,
so running it beside a pod that still migrates itself is safe. Deployments that run this
(deploy/*.yaml: the `<service>-migrate` Job) set `MENTORBUS_MIGRATE_ON_START=false`: their
pods then only check that nothing is pending and refuse to start otherwise.
"""

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from shared.db import SHARED_MIGRATIONS, ensure_database, migrate
from shared.settings import ServiceSettings

SERVICES = ("profiles", "matching", "sessions", "feedback", "gateway")
# Located by path, not imported: importing a service's app would build the whole service.
SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"


def migrations_of(service: str) -> Path:
    """The directory of a service's own numbered `.sql` migrations."""
    return SERVICES_DIR / service / "migrations"


async def migrate_service(service: str, database_url: str) -> list[str]:
    """Create (if needed) and migrate one service's database; returns what was applied."""
    await ensure_database(database_url)
    return await migrate(database_url, SHARED_MIGRATIONS, migrations_of(service))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; prints each migration applied."""
    parser = argparse.ArgumentParser(prog="python -m shared.migrate", description=__doc__)
    parser.add_argument("service", choices=SERVICES)
    args = parser.parse_args(argv)
    # MENTORBUS_DATABASE_URL, or the development default for this service.
    settings = ServiceSettings(service_name=args.service)
    applied = asyncio.run(migrate_service(args.service, settings.database_url))
    for version in applied:
        print(f"applied {version}")
    print(f"{args.service}: {len(applied)} migration(s) applied, schema up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
