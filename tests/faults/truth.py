"""What every fault test ends with: each projection equal to its source of truth, and
each event handled exactly once by each consumer group that records it in its inbox (read
straight from the services' own databases)."""

import asyncio
import uuid
from typing import Any

import asyncpg

from tests.helpers import eventually

Databases = dict[str, asyncpg.Connection]

_PEOPLE = "SELECT external_id, version FROM person WHERE org_id = $1"
_MATCHES = "SELECT id, status FROM match WHERE org_id = $1"
_SESSIONS = "SELECT id FROM session WHERE org_id = $1"

# (source service, query, projecting services): the same query on each side must agree.
PROJECTIONS = (
    ("profiles", _PEOPLE, ("matching", "sessions", "feedback")),
    ("matching", _MATCHES, ("sessions", "feedback")),
    ("sessions", _SESSIONS, ("feedback",)),
)

# (source service, event type, consumer services): every event the source's outbox holds
# is in each consumer's inbox, no more and no fewer. Person events are not among them:
# their consumers apply full states by version (idempotent, no inbox row), so the people
# projections equal to profiles' (`caught_up`) are what says each took effect.
HANDLED = (
    ("matching", "mentorbus.match.accepted.v1", ("sessions", "feedback")),
    ("sessions", "mentorbus.session.scheduled.v1", ("feedback",)),
)


async def rows(conn: asyncpg.Connection, query: str, org_id: str) -> set[tuple[Any, ...]]:
    """The query's rows as a set; a row appearing twice fails the test (a doubled effect)."""
    found = [tuple(r) for r in await conn.fetch(query, uuid.UUID(org_id))]
    assert len(found) == len(set(found)), "a row appears twice"
    return set(found)


async def differences(db: Databases, org_id: str) -> dict[str, str]:
    """Which projections of the organization differ from their source (empty: none), by
    `<projecting service>/<source service>`."""
    found: dict[str, str] = {}
    for source, query, projections in PROJECTIONS:
        truth = await rows(db[source], query, org_id)
        for name in projections:
            projected = await rows(db[name], query, org_id)
            if projected != truth:
                found[f"{name}/{source}"] = (
                    f"{name} projects {len(projected)} of {source}'s {len(truth)} rows"
                    f" ({len(truth - projected)} missing or stale)"
                )
    return found


async def unpublished(db: Databases) -> dict[str, int]:
    """Outbox rows each service has not sent yet (only those not zero)."""
    counts = {
        name: int(
            await conn.fetchval("SELECT count(*) FROM outbox_message WHERE published_at IS NULL")
        )
        for name, conn in db.items()
    }
    return {name: count for name, count in counts.items() if count}


async def assert_handled_exactly_once(db: Databases) -> None:
    """Each consumer's inbox holds exactly the events of the source's outbox: none lost,
    none foreign (the inbox key makes a second handling of one event impossible, so this
    says every event took effect once)."""
    for source, event_type, consumers in HANDLED:
        sent = await db[source].fetch(
            "SELECT event_id FROM outbox_message WHERE event_type = $1", event_type
        )
        expected = {r["event_id"] for r in sent}
        for name in consumers:
            handled = await db[name].fetch(
                "SELECT event_id FROM inbox_message WHERE event_type = $1", event_type
            )
            ids = [r["event_id"] for r in handled]
            assert len(ids) == len(set(ids)), f"{name} handled an {event_type} twice"
            assert set(ids) == expected, (
                f"{name} handled {len(set(ids) & expected)} of {len(expected)} {event_type}"
                f" events ({len(set(ids) - expected)} unknown to {source})"
            )


async def caught_up(db: Databases, org_id: str, timeout: float) -> dict[str, float]:
    """Wait until every projection equals its source and every outbox is sent; fail with
    what still differs. Returns when (seconds from now) each was first seen caught up:
    `relay` for the outboxes, `<projecting service>/<source service>` for projections."""
    last: dict[str, str] = {}
    started = asyncio.get_running_loop().time()
    pending = {"relay", *(f"{n}/{source}" for source, _, names in PROJECTIONS for n in names)}
    done: dict[str, float] = {}

    async def nothing_differs() -> bool:
        nonlocal last
        unsent = await unpublished(db)
        last = await differences(db, org_id)
        if unsent:
            last["relay"] = ", ".join(
                f"{name} holds {n} unsent events" for name, n in unsent.items()
            )
        now = asyncio.get_running_loop().time() - started
        done.update({name: now for name in pending - set(last) - set(done)})
        return not last

    try:
        await eventually(nothing_differs, timeout=timeout, interval=0.5)
    except AssertionError:
        raise AssertionError(f"not caught up within {timeout}s: {list(last.values())}") from None
    return done
