"""Benchmark of the sessions service through the gateway, on its own broker, services and
throwaway databases:

1. bookings per second with conflict checks (PostgreSQL's exclusion constraint) under
   8 concurrent clients: 500 one-off sessions for each of a pair's two people (with
   other partners, over the next year), plus deliberate clashes that must be refused;
2. slot search for that pair (a year of weekly availability, 500 booked sessions each),
   p50/p99 over many 4-week windows, beside a bare GET of the same service (a person's
   availability) through the same gateway as the baseline.

    .venv/bin/python bench/sessions.py [--searches 300] [--clients 8]
"""

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.*

from devstack.broker import Broker
from devstack.stack import SERVICES, Stack
from shared.db import drop_database
from shared.identity import ALL_SCOPES, Caller, sign_identity
from tests.matchmaking import active_match

PER_PERSON = 500


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def weekday_slots(start: datetime, hours: tuple[int, ...], count: int) -> list[datetime]:
    """`count` instants at the given UTC hours on consecutive weekdays from `start`."""
    found: list[datetime] = []
    day = start
    while len(found) < count:
        if day.weekday() < 5:
            found += [day.replace(hour=h) for h in hours][: count - len(found)]
        day += timedelta(days=1)
    return found


async def book_all(
    stack: Stack, key: dict[str, str], jobs: list[dict[str, object]], clients: int
) -> tuple[float, dict[int, int]]:
    """Book every job with `clients` concurrent clients; (seconds, count per status)."""
    queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    statuses: dict[int, int] = {}

    async def client() -> None:
        async with httpx.AsyncClient(base_url=stack.url(), timeout=60, headers=key) as api:
            while not queue.empty():
                job = queue.get_nowait()
                response = await api.post("/v1/sessions", json=job)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*[client() for _ in range(clients)])
    return time.perf_counter() - started, statuses


async def timed_gets(api: httpx.AsyncClient, paths: list[str], key: dict[str, str]) -> list[float]:
    """Sequential GETs; each one's latency (all must answer 200)."""
    times = []
    for path in paths:
        started = time.perf_counter()
        response = await api.get(path, headers=key)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return times


async def run(stack: Stack, searches: int, clients: int) -> None:
    async with httpx.AsyncClient(base_url=stack.url(), timeout=60) as api:
        admin = {"Authorization": f"Bearer {stack.admin_token}"}
        org = (await api.post("/v1/organizations", json={"name": "bench"}, headers=admin)).json()
        created = await api.post(
            f"/v1/organizations/{org['id']}/api-keys", json={"name": "b"}, headers=admin
        )
        key = {"Authorization": f"Bearer {created.json()['key']}"}
        pair = await active_match(
            api,
            key,
            "MENTOR",
            "MENTEE",
            mentor_zone="America/New_York",
            mentee_zone="Europe/Berlin",
        )
        # Each of the two has a partner in another match: their 500 sessions each go there.
        mentor_other = await active_match(
            api,
            key,
            "MENTOR",
            "OTHER-MENTEE",
            program_id=pair.program_id,
            mentor_enrollment_id=pair.mentor_enrollment_id,
        )
        mentee_other = await active_match(api, key, "OTHER-MENTOR", "OTHER-MENTEE-2")
        # ... and the mentee meets a second mentor in another program.
        mentee_side = await active_match(
            api,
            key,
            "OTHER-MENTOR",
            "MENTEE",
            program_id=mentee_other.program_id,
            mentor_enrollment_id=mentee_other.mentor_enrollment_id,
        )
        weekly = [{"weekday": d, "start": "08:00", "end": "17:00"} for d in range(5)]
        for person in ("MENTOR", "MENTEE"):
            put = await api.put(
                f"/v1/employees/{person}/availability", json={"weekly": weekly}, headers=key
            )
            assert put.status_code == 200, put.text

        start = (datetime.now(UTC) + timedelta(days=1)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        jobs: list[dict[str, object]] = [
            {"match_id": mentor_other.match_id, "starts_at": at.isoformat(), "duration_minutes": 30}
            for at in weekday_slots(start, (14, 20), PER_PERSON)
        ] + [
            {"match_id": mentee_side.match_id, "starts_at": at.isoformat(), "duration_minutes": 30}
            for at in weekday_slots(start, (9, 15), PER_PERSON)
        ]
        # Every tenth booking is tried twice: the second must be refused (409).
        jobs += [dict(j) for j in jobs[::10]]
        jobs.sort(key=lambda j: str(j["starts_at"]))
        seconds, statuses = await book_all(stack, key, jobs, clients)
        assert statuses.get(201) == 2 * PER_PERSON, statuses
        assert statuses.get(409) == len(jobs) - 2 * PER_PERSON, statuses

        windows = [start + timedelta(days=(i * 7) % 330) for i in range(searches)]
        slot_paths = [
            f"/v1/matches/{pair.match_id}/slots?"
            + httpx.QueryParams(
                {
                    "from": w.isoformat(),
                    "to": (w + timedelta(days=28)).isoformat(),
                    "duration": 60,
                    "step": 30,
                }
            ).__str__()
            for w in windows
        ]
        found = (await api.get(slot_paths[0], headers=key)).json()["items"]
        assert found, "the pair should have common free time"
        await timed_gets(api, slot_paths[:20], key)  # warm-up
        base_paths = ["/v1/employees/MENTOR/availability"] * searches
        await timed_gets(api, base_paths[:20], key)
        slot_times = await timed_gets(api, slot_paths, key)
        base_times = await timed_gets(api, base_paths, key)
    # The same two reads straight at the sessions service (what the gateway adds drops out).
    identity = Caller(org_id=uuid.UUID(org["id"]), is_admin=False, scopes=(ALL_SCOPES,)).headers()

    async def sign(request: httpx.Request) -> None:
        # As the gateway does: each request's identity signed for its method and target.
        request.headers.update(
            sign_identity(
                identity, method=request.method, target=request.url.raw_path,
                secret=stack.identity_secret, ttl_seconds=60,
            )
        )  # fmt: skip

    async with httpx.AsyncClient(
        base_url=stack.url("sessions"), timeout=60, event_hooks={"request": [sign]}
    ) as direct:
        await timed_gets(direct, slot_paths[:20], identity)
        direct_slots = await timed_gets(direct, slot_paths, identity)
        direct_base = await timed_gets(direct, base_paths, identity)

    print(f"bookings with conflict checks, {clients} concurrent clients through the gateway:")
    print(
        f"  {len(jobs)} attempts in {seconds:.1f} s: {len(jobs) / seconds:,.0f} bookings/s "
        f"({statuses.get(201, 0)} booked, {statuses.get(409, 0)} refused as conflicts)"
    )
    print(
        f"slot search, 4-week windows, a pair with weekly availability for the year and "
        f"{PER_PERSON} booked sessions each ({len(found)} slots in the first window):"
    )
    print(f"  p50 {ms(statistics.median(slot_times))}   p99 {ms(percentile(slot_times, 0.99))}")
    print("baseline: GET of one availability from the same service through the gateway:")
    print(f"  p50 {ms(statistics.median(base_times))}   p99 {ms(percentile(base_times, 0.99))}")
    print("straight at the sessions service (no gateway): slot search, then the baseline GET:")
    print(f"  p50 {ms(statistics.median(direct_slots))}   p99 {ms(percentile(direct_slots, 0.99))}")
    print(f"  p50 {ms(statistics.median(direct_base))}   p99 {ms(percentile(direct_base, 0.99))}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--searches", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="mentorbus-bench-"))
    broker = Broker(log_dir)
    broker.start()
    stack = Stack.on_free_ports(
        bootstrap_servers=broker.bootstrap_servers,
        admin_token=secrets.token_urlsafe(32),
        log_dir=log_dir,
        database_prefix=f"mbbench_{secrets.token_hex(3)}",
    )
    try:
        stack.start()
        await run(stack, args.searches, args.clients)
    finally:
        stack.stop()
        broker.stop()
        for service in SERVICES:
            await drop_database(stack.database_url(service))


if __name__ == "__main__":
    asyncio.run(main())
