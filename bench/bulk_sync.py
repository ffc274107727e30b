"""Benchmark of the HRIS bulk sync: N employees through the gateway's
`POST /v1/employees/bulk` (batches of 1,000, a few in flight) into profiles' PostgreSQL,
beside the same rows written straight into a scratch table with asyncpg `COPY` and
`executemany`, in the same run. Prints records/second of each and the ratios; with
`--with-consumers`, when each consumer's projection held everyone and when profiles' outbox
relay had published the last event (where the time went).

    .venv/bin/python bench/bulk_sync.py [--count 100000] [--batch 1000] [--concurrency 4]

Starts its own broker and services on free ports with throwaway databases, and drops
them at the end. The gateway path does everything a real sync does: authentication,
forwarding, per-record validation, change detection, manager-cycle checks, the write,
and one `person.upserted` event per record in the outbox (which the relay publishes to
the broker meanwhile); the baselines only write rows.
"""

import argparse
import asyncio
import json
import os
import secrets
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from devstack.broker import Broker
from devstack.cpu import CpuMeter, process_seconds
from devstack.stack import SERVICES, UNLIMITED_RATES_ENV, Stack
from shared.db import asyncpg_dsn, drop_database, ensure_database

CONSUMERS = ("matching", "sessions", "feedback")
DEPARTMENTS = ["Engineering", "Sales", "Finance", "Marketing", "Support", "Legal", "People"]
ZONES = ["Europe/London", "America/New_York", "Asia/Tokyo", "Europe/Berlin", "Asia/Kolkata"]
LANGUAGES = [["en"], ["en", "fr"], ["de", "en"], ["ja"], ["es", "en"]]

# The person table's shape and indexes (services/profiles/migrations), for the baseline.
SCRATCH_TABLE = """
CREATE TABLE person (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    external_id text NOT NULL,
    email text, given_name text, family_name text, display_name text, title text,
    department text, division text, cost_center text, location text, time_zone text,
    languages text[] NOT NULL DEFAULT '{}',
    manager_external_id text,
    hire_date date,
    employment_status text NOT NULL DEFAULT 'active',
    attributes jsonb NOT NULL DEFAULT '{}',
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    user_name text,
    scim_external_id text,
    UNIQUE (org_id, external_id)
);
CREATE INDEX ON person (org_id, manager_external_id);
CREATE UNIQUE INDEX ON person (org_id, lower(user_name)) WHERE user_name IS NOT NULL;
CREATE INDEX ON person (org_id, scim_external_id);
CREATE INDEX ON person (org_id, lower(email));
"""
COLUMNS = [
    "id", "org_id", "external_id", "email", "given_name", "family_name", "display_name",
    "title", "department", "division", "cost_center", "location", "time_zone", "languages",
    "manager_external_id", "hire_date", "employment_status", "attributes", "version",
    "scim_external_id",
]  # fmt: skip


def employee(i: int) -> dict[str, Any]:
    """A plausible HRIS record; managers form a tree (each reports to i // 8)."""
    return {
        "external_id": f"E{i:07}",
        "email": f"employee{i}@example.com",
        "given_name": f"Given{i}",
        "family_name": f"Family{i}",
        "display_name": f"Given{i} Family{i}",
        "title": "Engineer" if i % 5 else "Manager",
        "department": DEPARTMENTS[i % len(DEPARTMENTS)],
        "division": f"Division {i % 11}",
        "cost_center": f"CC-{i % 97:03}",
        "location": "Remote",
        "time_zone": ZONES[i % len(ZONES)],
        "languages": LANGUAGES[i % len(LANGUAGES)],
        "manager_external_id": f"E{i // 8:07}" if i else None,
        "hire_date": (date(2010, 1, 1) + timedelta(days=i % 5000)).isoformat(),
        "employment_status": "active",
        "attributes": {"level": f"L{i % 8}", "remote": i % 2 == 0},
    }


async def projected_by_all(
    stack: Stack, org_id: str, external_ids: list[str], started: float, limit: float
) -> dict[str, float | None]:
    """Seconds from `started` until each consumer's projection holds all the people of
    the organization, `external_ids` (None: not within `limit` seconds)."""
    count = len(external_ids)
    sample = external_ids[:: max(1, count // 200)]
    done: dict[str, float | None] = {}
    connections = {s: await asyncpg.connect(asyncpg_dsn(stack.database_url(s))) for s in CONSUMERS}
    try:
        while len(done) < len(CONSUMERS):
            for service, conn in connections.items():
                if service in done:
                    continue
                # A count over everyone costs PostgreSQL ~10 ms: a few hundred index probes
                # first, so the measuring does not slow down what it measures.
                sampled = await conn.fetchval(
                    "SELECT count(*) FROM unnest($2::text[]) AS s (external_id) WHERE EXISTS"
                    " (SELECT FROM person AS p WHERE p.org_id = $1"
                    " AND p.external_id = s.external_id)",
                    uuid.UUID(org_id),
                    sample,
                )
                if sampled < len(sample):
                    continue
                found = await conn.fetchval(
                    "SELECT count(*) FROM person WHERE org_id = $1", uuid.UUID(org_id)
                )
                if found >= count:
                    done[service] = time.perf_counter() - started
            if time.perf_counter() - started > limit:
                for service in CONSUMERS:
                    done.setdefault(service, None)
            await asyncio.sleep(0.2)
    finally:
        for conn in connections.values():
            await conn.close()
    return done


async def sync_through_gateway(
    stack: Stack,
    records: list[dict[str, Any]],
    batch: int,
    concurrency: int,
    with_consumers: bool,
    meter: CpuMeter,
) -> tuple[float, dict[str, float | None], list[str]]:
    """Sync every record through the bulk API; returns the seconds it took and, with the
    consumers running, the seconds until each consumer had projected everyone (both from
    the first request), and where the CPU went until then (`meter`'s lines)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=stack.url(), timeout=120, limits=limits) as api:
        admin = {"Authorization": f"Bearer {stack.admin_token}"}
        org = (await api.post("/v1/organizations", json={"name": "bench"}, headers=admin)).json()
        path = f"/v1/organizations/{org['id']}/api-keys"
        key = (await api.post(path, json={"name": "hris"}, headers=admin)).json()["key"]
        headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
        bodies = [
            json.dumps({"employees": records[i : i + batch]}).encode()
            for i in range(0, len(records), batch)
        ]
        semaphore = asyncio.Semaphore(concurrency)
        outcomes: dict[str, int] = {}

        async def send(body: bytes) -> None:
            async with semaphore:
                answer = await api.post("/v1/employees/bulk", content=body, headers=headers)
            answer.raise_for_status()
            for result in answer.json()["results"]:
                outcomes[result["status"]] = outcomes.get(result["status"], 0) + 1

        started, started_at = time.perf_counter(), time.time()
        meter.start()
        client_started = process_seconds(os.getpid())
        await asyncio.gather(*(send(b) for b in bodies))
        elapsed = time.perf_counter() - started
        meter.stop()
        meter.attribute("bench client", process_seconds(os.getpid()) - client_started)
        cpu = [f"until the last answer: {meter.per_unit(len(records))} per record"]
    if outcomes != {"created": len(records)}:
        raise SystemExit(f"unexpected bulk outcomes: {outcomes}")
    projected = (
        await projected_by_all(
            stack, org["id"], [r["external_id"] for r in records], started, limit=300
        )
        if with_consumers
        else {}
    )
    if with_consumers:
        meter.stop()
        meter.attribute("bench client", process_seconds(os.getpid()) - client_started)
        cpu.append(f"until all projected:   {meter.per_unit(len(records))} per record")
    # Where the time went: when profiles' outbox relay had published the last event.
    profiles = await asyncpg.connect(asyncpg_dsn(stack.database_url("profiles")))
    try:
        last = await profiles.fetchval(
            "SELECT extract(epoch FROM max(published_at)) FROM outbox_message"
            " WHERE NOT EXISTS (SELECT 1 FROM outbox_message WHERE published_at IS NULL)"
        )
    finally:
        await profiles.close()
    if last is not None:
        projected["(relay: last event published)"] = float(last) - started_at
    return elapsed, projected, cpu


def as_row(org_id: uuid.UUID, record: dict[str, Any]) -> tuple[Any, ...]:
    """A record as a row of the scratch table."""
    values = {
        **record,
        "id": uuid.uuid4(),
        "org_id": org_id,
        "hire_date": date.fromisoformat(record["hire_date"]),
        "attributes": json.dumps(record["attributes"]),
        "version": 1,
        "scim_external_id": record["external_id"],
    }
    return tuple(values[c] for c in COLUMNS)


async def direct_writes(database_url: str, records: list[dict[str, Any]]) -> tuple[float, float]:
    """Seconds to write the rows with COPY, then with executemany (in batches, one
    transaction each, like the bulk API)."""
    await ensure_database(database_url)
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute(SCRATCH_TABLE)
        org_id = uuid.uuid4()
        rows = [as_row(org_id, r) for r in records]
        started = time.perf_counter()
        for i in range(0, len(rows), 1000):
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "person", records=rows[i : i + 1000], columns=COLUMNS
                )
        copy_seconds = time.perf_counter() - started
        await conn.execute("TRUNCATE person")
        placeholders = ", ".join(
            f"${n}::jsonb" if c == "attributes" else f"${n}" for n, c in enumerate(COLUMNS, 1)
        )
        insert = f"INSERT INTO person ({', '.join(COLUMNS)}) VALUES ({placeholders})"
        started = time.perf_counter()
        for i in range(0, len(rows), 1000):
            async with conn.transaction():
                await conn.executemany(insert, rows[i : i + 1000])
        executemany_seconds = time.perf_counter() - started
    finally:
        await conn.close()
    return copy_seconds, executemany_seconds


async def main(count: int, batch: int, concurrency: int, with_consumers: bool) -> None:
    """Run both, print the figures."""
    records = [employee(i) for i in range(count)]
    prefix = f"mbbench_{secrets.token_hex(3)}"
    log_dir = Path(tempfile.mkdtemp(prefix="mentorbus-bench-"))
    broker = Broker(log_dir)
    broker.start()
    stack = Stack.on_free_ports(
        bootstrap_servers=broker.bootstrap_servers,
        admin_token=secrets.token_urlsafe(32),
        log_dir=log_dir,
        database_prefix=prefix,
        extra_env=UNLIMITED_RATES_ENV,
    )
    scratch = f"{stack.postgres_url}/{prefix}_scratch"
    try:
        # The baselines first, on a quiet machine: the services then only add their load.
        copy_seconds, executemany_seconds = await direct_writes(scratch, records)
        await asyncio.to_thread(stack.start)
        if not with_consumers:
            # In production the consumers run on their own machines; here they would take
            # half of a 2-core box to project the very events this run publishes.
            for service in CONSUMERS:
                stack.processes[service].stop()
        pids = {n: p.process.pid for n, p in stack.processes.items() if p.process}
        if broker.pid:
            pids["broker"] = broker.pid
        meter = CpuMeter(pids)
        gateway_seconds, projected, cpu = await sync_through_gateway(
            stack, records, batch, concurrency, with_consumers, meter
        )
    finally:
        stack.stop()
        broker.stop()
        for service in SERVICES:
            await drop_database(stack.database_url(service))
        await drop_database(scratch)

    def rate(seconds: float) -> float:
        return count / seconds

    consumers = "running" if with_consumers else "stopped"
    print(
        f"records: {count}, batch: {batch}, concurrent requests: {concurrency}, "
        f"event consumers (matching, sessions, feedback): {consumers}"
    )
    print(
        f"gateway bulk API     {rate(gateway_seconds):>10,.0f} records/s ({gateway_seconds:.2f} s)"
    )
    print(f"asyncpg COPY         {rate(copy_seconds):>10,.0f} records/s ({copy_seconds:.2f} s)")
    print(
        f"asyncpg executemany  {rate(executemany_seconds):>10,.0f} records/s "
        f"({executemany_seconds:.2f} s)"
    )
    print(f"COPY / gateway:        {gateway_seconds / copy_seconds:.2f}x   (aim: <= 3x)")
    print(f"executemany / gateway: {gateway_seconds / executemany_seconds:.2f}x")
    print("CPU time (microseconds per record, from the first request):")
    for line in cpu:
        print(f"  {line}")
    for service, seconds in projected.items():
        figure = f"{seconds:.1f} s" if seconds is not None else "not within 300 s"
        if service.startswith("("):
            print(f"{service}: {figure} after the first request")
            continue
        print(
            f"all {count} people in {service:<9} projection: {figure} after the first request"
            "   (aim: <= 30 s)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--with-consumers",
        action="store_true",
        help="keep matching, sessions and feedback consuming the published events",
    )
    args = parser.parse_args()
    asyncio.run(main(args.count, args.batch, args.concurrency, args.with_consumers))
