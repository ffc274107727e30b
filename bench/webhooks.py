"""Benchmark of webhook deliveries: events committed in profiles' outbox -> relay -> broker
-> gateway consumer (delivery rows) -> delivery worker -> a signed POST to a local
receiver. Prints deliveries/s for a burst, and p50/p99 from each event's commit to its
delivery at a steady rate (aim: p99 under 1 s at 200 deliveries/s).

Baselines from the same run: the same events' commit -> a plain Kafka consumer of the
topic (the event thread alone, what webhooks add to), and direct POSTs from this process
to the same receiver (what the receiver and an HTTP client alone sustain).

    .venv/bin/python bench/webhooks.py [--rate 200] [--seconds 10] [--burst 5000]
"""

import argparse
import asyncio
import json
import os
import secrets
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg
import httpx
from aiohttp import web

from devstack.broker import Broker
from devstack.processes import free_port
from devstack.stack import SERVICES, Stack
from shared.db import asyncpg_dsn, drop_database
from shared.events import PersonUpsertedV1, make_event
from shared.kafka import make_consumer
from shared.settings import ServiceSettings

BENCH_ENV = {
    "MENTORBUS_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
    "MENTORBUS_WEBHOOK_ALLOW_HTTP": "true",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


class Receiver:
    """Answers 204 to every POST and notes when each `webhook-id` arrived."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.arrived: dict[str, float] = {}
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.arrived.setdefault(request.headers.get("webhook-id", ""), time.time())
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()


class TopicWatcher:
    """Baseline: a plain consumer of mentorbus.people noting when each event id arrives."""

    def __init__(self, bootstrap: str) -> None:
        settings = ServiceSettings(
            service_name="bench", kafka_bootstrap_servers=bootstrap,
            kafka_session_timeout_ms=3000, kafka_heartbeat_interval_ms=300,
        )  # fmt: skip
        self.consumer = make_consumer(
            settings, f"bench-{secrets.token_hex(3)}", ["mentorbus.people"]
        )
        self.arrived: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        while not self.consumer.assignment():
            self.consumer.poll(timeout_ms=200)
        self.consumer.poll(timeout_ms=200)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for records in self.consumer.poll(timeout_ms=200).values():
                now = time.time()
                for r in records:
                    self.arrived.setdefault(str(json.loads(r.value)["id"]), now)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.consumer.close()


async def commit_events(
    profiles: asyncpg.Connection, org: str, count: int, rate: float | None
) -> dict[str, float]:
    """Commit `count` person.upserted events in profiles' outbox (one transaction each,
    paced at `rate`/s, or all in one go when None); returns each event's commit time."""
    envelopes = [
        make_event(
            PersonUpsertedV1(person_id=uuid.uuid4(), external_id=f"B-{i}", version=1),
            source="bench",
            orgid=org,
        )
        for i in range(count)
    ]
    rows = [
        (e.id, PersonUpsertedV1.topic, e.subject, e.type, e.model_dump_json()) for e in envelopes
    ]
    insert = (
        "INSERT INTO outbox_message (event_id, topic, key, event_type, payload) "
        "VALUES ($1, $2, $3, $4, $5)"
    )
    committed: dict[str, float] = {}
    if rate is None:
        await profiles.executemany(insert, rows)
        now = time.time()
        return {str(e.id): now for e in envelopes}
    started = time.monotonic()
    for i, row in enumerate(rows):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await profiles.execute(insert, *row)
        committed[str(row[0])] = time.time()
    return committed


async def wait_for(arrived: dict[str, float], ids: set[str], timeout: float) -> None:
    """Poll (the receiver and the Kafka thread fill `arrived`) until all ids or timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ids <= arrived.keys():
            return
        await asyncio.sleep(0.05)


async def stage_split(stack: Stack, committed: dict[str, float]) -> tuple[float, float]:
    """Medians of commit -> delivery row, and delivery row -> delivered (gateway's log)."""
    gateway = await asyncpg.connect(asyncpg_dsn(stack.database_url("gateway")))
    try:
        rows = await gateway.fetch(
            "SELECT event_id::text AS id, extract(epoch FROM created_at) AS created,"
            " extract(epoch FROM delivered_at) AS delivered FROM webhook_delivery"
            " WHERE event_id = ANY($1::uuid[])",
            list(committed),
        )
    finally:
        await gateway.close()
    to_row = [float(r["created"]) - committed[r["id"]] for r in rows]
    to_post = [float(r["delivered"]) - float(r["created"]) for r in rows if r["delivered"]]
    return statistics.median(to_row), statistics.median(to_post)


async def direct_posts(url: str, count: int, concurrency: int = 64) -> float:
    """Baseline: POSTs straight from this process to the receiver; returns posts/s."""
    body = json.dumps({"specversion": "1.0", "data": {"x": "y" * 400}}).encode()
    semaphore = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as http:

        async def post(i: int) -> None:
            async with semaphore, http.post(url, data=body, headers={"webhook-id": f"d{i}"}) as r:
                await r.read()

        started = time.perf_counter()
        await asyncio.gather(*(post(i) for i in range(count)))
        return count / (time.perf_counter() - started)


async def run(stack: Stack, broker: Broker, args: argparse.Namespace) -> None:
    receiver = Receiver()
    await receiver.start()
    profiles = await asyncpg.connect(asyncpg_dsn(stack.database_url("profiles")))
    watcher = TopicWatcher(broker.bootstrap_servers)
    try:
        async with httpx.AsyncClient(base_url=stack.url(), timeout=30) as api:
            admin = {"Authorization": f"Bearer {stack.admin_token}"}
            org = (await api.post("/v1/organizations", json={"name": "b"}, headers=admin)).json()
            path = f"/v1/organizations/{org['id']}/api-keys"
            key = (await api.post(path, json={"name": "b"}, headers=admin)).json()["key"]
            hook = await api.post(
                "/v1/webhooks",
                json={"url": receiver.url, "event_types": ["mentorbus.person.upserted.v1"]},
                headers={"Authorization": f"Bearer {key}"},
            )
            hook.raise_for_status()
        await asyncio.to_thread(watcher.start)
        # Warm up (consumer groups joined, connections open).
        warm = await commit_events(profiles, org["id"], 20, None)
        await wait_for(receiver.arrived, set(warm), 60)

        steady = await commit_events(profiles, org["id"], int(args.rate * args.seconds), args.rate)
        await wait_for(receiver.arrived, set(steady), 60)
        await wait_for(watcher.arrived, set(steady), 10)
        latencies = [receiver.arrived[i] - t for i, t in steady.items() if i in receiver.arrived]
        stages = await stage_split(stack, steady)
        base = [watcher.arrived[i] - t for i, t in steady.items() if i in watcher.arrived]

        started = time.perf_counter()
        burst = await commit_events(profiles, org["id"], args.burst, None)
        await wait_for(receiver.arrived, set(burst), 120)
        elapsed = time.perf_counter() - started
        delivered = len(set(burst) & receiver.arrived.keys())
        direct = await direct_posts(receiver.url, args.burst)
    finally:
        await asyncio.to_thread(watcher.stop)
        await profiles.close()
        await receiver.stop()

    load = os.getloadavg()[0]
    print(f"machine load average (1 min) at the end: {load:.1f} on {os.cpu_count()} cores")
    print(f"steady {args.rate:.0f} events/s for {args.seconds:.0f} s, commit -> delivery "
          f"({len(latencies)}/{len(steady)} delivered):")  # fmt: skip
    print(f"  p50 {ms(statistics.median(latencies))}   p99 {ms(percentile(latencies, 0.99))}"
          f"   max {ms(max(latencies))}")  # fmt: skip
    print(f"  of which commit -> delivery row (gateway consumer): p50 {ms(stages[0])}, "
          f"delivery row -> delivered (worker): p50 {ms(stages[1])}")  # fmt: skip
    print("baseline: the same events, commit -> a plain Kafka consumer of the topic:")
    print(f"  p50 {ms(statistics.median(base))}   p99 {ms(percentile(base, 0.99))}")
    print(f"burst of {args.burst} events committed at once: {delivered} delivered in "
          f"{elapsed:.1f} s = {delivered / elapsed:,.0f} deliveries/s")  # fmt: skip
    print(f"baseline: direct POSTs to the same receiver (64 at once): {direct:,.0f} posts/s")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--burst", type=int, default=5000)
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="mentorbus-bench-"))
    broker = Broker(log_dir)
    broker.start()
    stack = Stack.on_free_ports(
        bootstrap_servers=broker.bootstrap_servers, admin_token=secrets.token_urlsafe(32),
        log_dir=log_dir, database_prefix=f"mbbench_{secrets.token_hex(3)}", extra_env=BENCH_ENV,
    )  # fmt: skip
    try:
        stack.start()
        await run(stack, broker, args)
    finally:
        stack.stop()
        broker.stop()
        for service in SERVICES:
            await drop_database(stack.database_url(service))


if __name__ == "__main__":
    asyncio.run(main())
