"""Benchmark of the event thread: HTTP write -> profiles outbox -> relay -> broker ->
matching's consumer -> projection. Prints events/s and latency percentiles, with the
broker's own produce-to-consume figures from the same run as the baseline.

    .venv/bin/python bench/event_thread.py [--latency-writes 300] [--events 5000]
"""

import argparse
import asyncio
import json
import secrets
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

from devstack.broker import Broker
from devstack.stack import SERVICES, Stack
from shared.db import asyncpg_dsn, drop_database
from shared.events import PersonUpsertedV1, make_event
from shared.kafka import EventPublisher, OutgoingRecord, ensure_topics, make_consumer
from shared.settings import ServiceSettings


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


async def projected_at(conn: asyncpg.Connection, org: str, count: int) -> dict[str, float]:
    """Wait until matching projected `count` people of `org`; when each was handled."""
    deadline = time.monotonic() + 60
    while True:
        rows = await conn.fetch(
            "SELECT external_id, extract(epoch FROM updated_at) AS at FROM person "
            "WHERE org_id = $1",
            uuid.UUID(org),
        )
        if len(rows) >= count or time.monotonic() > deadline:
            return {r["external_id"]: float(r["at"]) for r in rows}
        await asyncio.sleep(0.1)


async def http_to_projection_latency(stack: Stack, writes: int) -> list[float]:
    """Sequential PUTs; latency = when matching's handler ran minus when the PUT was sent."""
    matching = await asyncpg.connect(asyncpg_dsn(stack.database_url("matching")))
    async with httpx.AsyncClient(base_url=stack.url(), timeout=30) as api:
        admin = {"Authorization": f"Bearer {stack.admin_token}"}
        org = (await api.post("/v1/organizations", json={"name": "bench"}, headers=admin)).json()
        path = f"/v1/organizations/{org['id']}/api-keys"
        key = (await api.post(path, json={"name": "b"}, headers=admin)).json()["key"]
        headers = {"Authorization": f"Bearer {key}"}
        # Warm up: the consumer group must have joined before latency means anything.
        (await api.put("/v1/employees/WARMUP", json={}, headers=headers)).raise_for_status()
        await projected_at(matching, org["id"], 1)
        sent: dict[str, float] = {}
        for i in range(writes):
            external_id = f"LAT-{i}"
            sent[external_id] = time.time()
            response = await api.put(f"/v1/employees/{external_id}", json={}, headers=headers)
            response.raise_for_status()
            await asyncio.sleep(0.005)  # spaced out: latency, not queueing
    try:
        handled = await projected_at(matching, org["id"], writes + 1)
    finally:
        await matching.close()
    return [handled[k] - t for k, t in sent.items() if k in handled]


CONSUMERS = ("matching", "sessions", "feedback")


async def relay_to_projection_throughput(stack: Stack, events: int) -> dict[str, float]:
    """Commit `events` outbox rows at once in profiles; events/s until each consumer group
    (matching, sessions, feedback) had projected them all."""
    org = uuid.uuid4()
    envelopes = [
        make_event(
            PersonUpsertedV1(person_id=uuid.uuid4(), external_id=f"T-{i}", version=1),
            source="bench",
            orgid=org,
        )
        for i in range(events)
    ]
    profiles = await asyncpg.connect(asyncpg_dsn(stack.database_url("profiles")))
    consumers = {s: await asyncpg.connect(asyncpg_dsn(stack.database_url(s))) for s in CONSUMERS}
    try:
        # One transaction, so the relay sees them all at once; the clock starts at its commit.
        async with profiles.transaction():
            await profiles.executemany(
                "INSERT INTO outbox_message (event_id, topic, key, event_type, payload) "
                "VALUES ($1, $2, $3, $4, $5)",
                [
                    (e.id, PersonUpsertedV1.topic, e.subject, e.type, e.model_dump_json())
                    for e in envelopes
                ],
            )
        started = time.perf_counter()

        async def rate(conn: asyncpg.Connection) -> float:
            await projected_at(conn, str(org), events)
            return events / (time.perf_counter() - started)

        committed = time.time()
        rates = await asyncio.gather(*(rate(c) for c in consumers.values()))
        # Where the time went: when the relay had published the last of them.
        last = await profiles.fetchval(
            "SELECT extract(epoch FROM max(published_at)) FROM outbox_message"
            " WHERE event_id = ANY($1::uuid[])",
            [e.id for e in envelopes],
        )
        relayed = {"(relay alone)": events / max(float(last) - committed, 1e-3)}
        return {**dict(zip(consumers, rates, strict=True)), **relayed}
    finally:
        await profiles.close()
        for conn in consumers.values():
            await conn.close()


def broker_baseline(bootstrap: str, messages: int) -> tuple[float, list[float]]:
    """Raw produce -> consume through the same client library: (msgs/s, latencies)."""
    settings = ServiceSettings(
        service_name="bench", kafka_bootstrap_servers=bootstrap,
        kafka_session_timeout_ms=3000, kafka_heartbeat_interval_ms=300,
    )  # fmt: skip
    topic = f"bench.baseline.{secrets.token_hex(3)}"
    ensure_topics(settings, [topic])
    consumer = make_consumer(settings, f"bench-{secrets.token_hex(3)}", [topic])
    received: list[float] = []
    done = threading.Event()

    def consume() -> None:
        while len(received) < messages:
            for records in consumer.poll(timeout_ms=500).values():
                now = time.time()
                received.extend(now - json.loads(r.value)["sent"] for r in records)
        done.set()

    while not consumer.assignment():
        consumer.poll(timeout_ms=200)
    thread = threading.Thread(target=consume)
    thread.start()
    publisher = EventPublisher(settings)
    started = time.perf_counter()
    for start in range(0, messages, 500):
        batch = [
            OutgoingRecord(topic, str(i), {"sent": time.time(), "i": i})
            for i in range(start, min(start + 500, messages))
        ]
        publisher.publish_batch(batch)
    done.wait(120)
    rate = messages / (time.perf_counter() - started)
    publisher.close()
    thread.join()
    consumer.close()
    return rate, received


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-writes", type=int, default=300)
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="mentorbus-bench-"))
    broker = Broker(log_dir)
    broker.start()
    stack = Stack.on_free_ports(
        bootstrap_servers=broker.bootstrap_servers, admin_token=secrets.token_urlsafe(32),
        log_dir=log_dir, database_prefix=f"mbbench_{secrets.token_hex(3)}",
    )  # fmt: skip
    try:
        stack.start()
        latencies = await http_to_projection_latency(stack, args.latency_writes)
        throughput = await relay_to_projection_throughput(stack, args.events)
        base_rate, base_latencies = await asyncio.to_thread(
            broker_baseline, broker.bootstrap_servers, args.events
        )
    finally:
        stack.stop()
        broker.stop()
        for service in SERVICES:
            await drop_database(stack.database_url(service))
    print(f"HTTP PUT -> matching projection, {len(latencies)} writes:")
    print(f"  p50 {ms(statistics.median(latencies))}   p99 {ms(percentile(latencies, 0.99))}")
    print(f"outbox relay -> broker -> consumer projection, {args.events} events:")
    for group, rate in throughput.items():
        print(
            f"  {group:<9} {rate:>8,.0f} events/s   ({rate / base_rate:.0%} of the baseline;"
            " aim: >= 50%)"
        )
    print(f"baseline: the broker alone (kafka-python produce -> consume), {args.events} messages:")
    print(f"  {base_rate:,.0f} msgs/s   p50 {ms(statistics.median(base_latencies))}"
          f"   p99 {ms(percentile(base_latencies, 0.99))}")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
