"""Database plumbing that replicas of one service share."""

import asyncio
import uuid

import asyncpg
from sqlalchemy.exc import DBAPIError

from shared.db import (
    SHARED_MIGRATIONS,
    database_unavailable,
    drop_database,
    ensure_database,
    lost_a_race,
    migrate,
)

POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432"


async def test_replicas_starting_together_create_and_migrate_once() -> None:
    url = f"{POSTGRES}/mbtest_race_{uuid.uuid4().hex[:8]}"
    try:
        await asyncio.gather(*(ensure_database(url) for _ in range(6)))
        applied = await asyncio.gather(*(migrate(url, SHARED_MIGRATIONS) for _ in range(6)))
        assert sorted(len(a) for a in applied) == [0, 0, 0, 0, 0, 1]
    finally:
        await drop_database(url)


def test_a_deadlock_or_serialization_failure_is_a_lost_race_not_an_outage() -> None:
    for driver_error in (
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        asyncpg.exceptions.SerializationError("could not serialize access"),
    ):
        wrapped = DBAPIError("INSERT ...", {}, driver_error)
        assert lost_a_race(wrapped) and not database_unavailable(wrapped)
    assert not lost_a_race(DBAPIError("SELECT 1", {}, ValueError("bad")))


def test_a_connection_the_server_dropped_is_an_outage_however_asyncpg_words_it() -> None:
    # Each of these came out of a pool whose server was stopped with `pg_ctl stop -m fast`.
    for driver_error in (
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.exceptions.InternalClientError(
            "cannot switch to state 15; another operation (2) is in progress"
        ),
        asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
        ConnectionRefusedError(111, "Connect call failed"),
    ):
        assert database_unavailable(driver_error)
        assert database_unavailable(DBAPIError("SELECT 1", {}, driver_error))
    assert not database_unavailable(asyncpg.exceptions.UniqueViolationError("duplicate"))
