"""One way to reach a service's own PostgreSQL database: engine, sessions, model base,
database creation and SQL migrations."""

import contextlib
import functools
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import asyncpg
from pydantic_core import to_json
from sqlalchemy import DateTime, MetaData, Table, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SHARED_MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    """The current instant, timezone-aware UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the tables every service database has (outbox, inbox). Each
    service declares its own tables on a base of its own (`service_metadata()`), so two
    services may both name a table `person` (tests load several services at once)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def service_metadata() -> MetaData:
    """A fresh metadata, with the naming convention, for one service's declarative base."""
    return MetaData(naming_convention=NAMING_CONVENTION)


class TimestampedMixin:
    """UUID primary key with `created_at` and `updated_at`."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, server_default=func.now()
    )


def asyncpg_dsn(database_url: str) -> str:
    """The plain `postgresql://` DSN asyncpg wants for a SQLAlchemy URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def make_engine(database_url: str, pool_size: int = 10) -> AsyncEngine:
    """An asyncpg-backed engine for one service database."""
    return create_async_engine(database_url, pool_size=pool_size, pool_pre_ping=True)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def ensure_database(database_url: str) -> None:
    """Create the service's database if it does not exist yet."""
    url = make_url(database_url)
    name = url.database
    if not name:
        raise ValueError("database_url names no database")
    conn = await asyncpg.connect(asyncpg_dsn(database_url).rsplit("/", 1)[0] + "/postgres")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # A replica starting at the same moment may win the race; PostgreSQL then
            # reports either error depending on timing.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(database_url: str) -> None:
    """Drop a database (tests use throwaway ones)."""
    url = make_url(database_url)
    conn = await asyncpg.connect(asyncpg_dsn(database_url).rsplit("/", 1)[0] + "/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    finally:
        await conn.close()


# Any constant works; it only has to be the same for every replica of a service.
_MIGRATION_LOCK = 7_424_011


async def migrate(database_url: str, *directories: Path) -> list[str]:
    """Apply the `*.sql` files of each directory in name order, once each.

    Runs under an advisory lock so replicas starting together do not race; each file runs
    in its own transaction together with its bookkeeping row. Returns what was applied.
    """
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migration ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migration")}
        for directory in directories:
            for path in sorted(directory.glob("*.sql")):
                version = f"{directory.parent.name}/{path.stem}"
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())
                    await conn.execute(
                        "INSERT INTO schema_migration (version) VALUES ($1)", version
                    )
                applied.append(version)
    finally:
        await conn.close()
    return applied


async def pending_migrations(database_url: str, *directories: Path) -> list[str]:
    """The migrations of `directories` not yet applied to the database (all of them when
    it has never been migrated), in the order `migrate` would apply them."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        exists = await conn.fetchval("SELECT to_regclass('schema_migration') IS NOT NULL")
        done = (
            {r["version"] for r in await conn.fetch("SELECT version FROM schema_migration")}
            if exists
            else set()
        )
    finally:
        await conn.close()
    return [
        version
        for directory in directories
        for path in sorted(directory.glob("*.sql"))
        if (version := f"{directory.parent.name}/{path.stem}") not in done
    ]


async def upsert_newer(
    session: AsyncSession, model: type[DeclarativeBase], values: dict[str, Any]
) -> bool:
    """Insert a projection row, or overwrite it only if `values["version"]` is newer.

    Projections apply events by version so an older event arriving late (a redelivery, or
    a replay) never overwrites newer state. Returns whether the row changed.
    """
    statement = _upsert_newer_statement(cast(Table, model.__table__), tuple(values))
    result = await session.execute(statement, values)
    return result.first() is not None


@functools.cache
def _upsert_newer_statement(table: Table, columns: tuple[str, ...]) -> Any:
    # Built once per table and column set: projections run it for every event.
    statement = pg_insert(table)
    keys = [c.name for c in table.primary_key.columns]
    return statement.on_conflict_do_update(
        index_elements=keys,
        set_={k: statement.excluded[k] for k in columns if k not in keys},
        where=table.c.version < statement.excluded.version,
    ).returning(*table.primary_key.columns)


async def driver_connection(session: AsyncSession) -> Any:
    """The session's own asyncpg connection (same transaction), for set-based statements
    that skip SQLAlchemy's per-value processing. Pending ORM changes are flushed first."""
    await session.flush()
    connection = await session.connection()
    raw: Any = (await connection.get_raw_connection()).driver_connection
    if not raw.is_in_transaction():
        # SQLAlchemy sends BEGIN lazily, with its first statement: without one, plain SQL
        # here would run outside the session's transaction (autocommit) and survive its
        # rollback.
        await session.execute(select(1))
    return raw


async def upsert_newer_many(
    session: AsyncSession, model: type[DeclarativeBase], rows: list[dict[str, Any]]
) -> list[Any]:
    """`upsert_newer` for many rows in one statement (a consumer's batch of events).

    Every row has the same keys. Where a batch holds several rows for one primary key the
    newest version wins (one statement may touch a row only once). Returns the primary
    keys (the first key column) of the rows that changed.
    """
    if not rows:
        return []
    table = cast(Table, model.__table__)
    keys = [c.name for c in table.primary_key.columns]
    newest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[k] for k in keys)
        seen = newest.get(key)
        if seen is None or seen["version"] < row["version"]:
            newest[key] = row
    statement = _upsert_newer_many_statement(table, tuple(rows[0]))
    conn = await driver_connection(session)
    # One JSON document for the whole batch: pydantic-core encodes it (UUIDs, dates) in
    # Rust, and PostgreSQL splits it into rows; no per-value parameter binding.
    found = await conn.fetch(statement, to_json(list(newest.values())).decode())
    return [r[0] for r in found]


@functools.cache
def _upsert_newer_many_statement(table: Table, columns: tuple[str, ...]) -> str:
    dialect = postgresql.dialect()
    keys = [c.name for c in table.primary_key.columns]
    types = ", ".join(f'"{c}" {table.c[c].type.compile(dialect=dialect)}' for c in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in columns if c not in keys)
    return (
        f'INSERT INTO "{table.name}" ({names}) SELECT {names} '
        f"FROM jsonb_to_recordset($1::text::jsonb) AS r({types}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates} "
        f'WHERE "{table.name}".version < EXCLUDED.version '
        f'RETURNING "{table.name}"."{keys[0]}"'
    )


# PostgreSQL refuses to store these in text (SQLSTATE 22021 character_not_in_repertoire: a
# NUL; 22P05 untranslatable_character: a `\u0000` escape in jsonb). JSON allows both, so
# such input passes validation and is a client error, not a 500.
UNSTORABLE_TEXT_STATES = frozenset({"22021", "22P05"})


def unstorable_text(exc: DBAPIError) -> bool:
    """Whether the database refused a write for text it cannot store."""
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    cause = getattr(exc.orig, "__cause__", None)
    return state in UNSTORABLE_TEXT_STATES or (
        getattr(cause, "sqlstate", None) in UNSTORABLE_TEXT_STATES
    )


# SQLSTATEs that say "the database is not there right now", not "this request is wrong":
# connection exceptions (08), operator intervention (57P01-57P05: shutdown, restart,
# starting up), too many connections (53300), and a database closed to connections (55000,
# as `ALTER DATABASE ... ALLOW_CONNECTIONS false` says it).
_UNAVAILABLE_PREFIXES = ("08", "57P", "53300")
_CLOSED_DATABASE = "55000"
# A connection the server dropped mid-statement: asyncpg says so with ConnectionDoesNotExist,
# or, when the loss lands between two protocol states, with InternalClientError "cannot
# switch to state N; another operation is in progress" (MagicStack/asyncpg#784, #1069).
_LOST_CONNECTION = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InternalClientError,
)


# Transactions PostgreSQL aborted because they raced another (deadlock_detected,
# serialization_failure): nothing is wrong with the request, it lost a race.
_CONCURRENCY_STATES = frozenset({"40P01", "40001"})


def lost_a_race(exc: BaseException) -> bool:
    """Whether the database aborted the transaction for a concurrent one (worth a 409 and
    a retry), e.g. two bookings that wait on each other's rows."""
    seen: BaseException | None = exc
    for _ in range(5):  # the driver's error sits a link or two down the chain
        if seen is None:
            return False
        state = str(getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None) or "")
        if state in _CONCURRENCY_STATES:
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database is unreachable or refusing connections (worth a
    503 and a retry), rather than a fault of the statement or the data."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    seen: BaseException | None = exc
    for _ in range(5):  # the driver's error sits a link or two down the chain
        if seen is None:
            return False
        if isinstance(seen, (OSError, *_LOST_CONNECTION)):
            return True
        state = str(getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None) or "")
        if state.startswith(_UNAVAILABLE_PREFIXES) or (
            state == _CLOSED_DATABASE and "accepting connections" in str(seen)
        ):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False
