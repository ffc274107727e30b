"""A realistic mix through the gateway for a fixed time, on a system of its own.

Routes, weighted: HRIS bulk sync (20 changed employees each), suggestions for a mentee,
session bookings, check-ins (feedback), program analytics, reads of one employee; while a
webhook receiver on 127.0.0.1 counts the deliveries the syncs and bookings cause.
Prints throughput, p50/p95/p99 per route and errors, beside a baseline measured in the
same run: the gateway's `/healthz` (no authentication, no upstream, no database).

With `--restart <service>` the service is stopped (SIGTERM) and started again in the
middle of the run; the report adds the errors that cost and how long until requests
succeeded again.

    .venv/bin/python bench/load.py [--seconds 60] [--clients 8] [--restart matching]
"""

import argparse
import asyncio
import collections
import os
import random
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from devstack.broker import Broker
from devstack.processes import free_port, wait_for_http
from devstack.stack import SERVICES, UNLIMITED_RATES_ENV, Stack
from shared.db import drop_database

MENTORS, MENTEES = 20, 40
WEIGHTS = {
    "POST /v1/employees/bulk": 1,
    "GET suggestions": 3,
    "POST /v1/sessions": 2,
    "POST check-ins": 2,
    "GET analytics": 1,
    "GET /v1/employees/{id}": 3,
}
# Which service a route needs, to attribute a restart's errors.
OWNER = {
    "POST /v1/employees/bulk": "profiles",
    "GET suggestions": "matching",
    "POST /v1/sessions": "sessions",
    "POST check-ins": "feedback",
    "GET analytics": "feedback",
    "GET /v1/employees/{id}": "profiles",
}
WEBHOOK_ENV = {
    "MENTORBUS_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
    "MENTORBUS_WEBHOOK_ALLOW_HTTP": "true",
    "MENTORBUS_WEBHOOK_IDLE_POLL_SECONDS": "0.2",
}


class Results:
    """Latencies, statuses and error times per route."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = collections.defaultdict(list)
        self.errors: dict[str, int] = collections.Counter()
        self.conflicts: dict[str, int] = collections.Counter()
        self.error_times: list[tuple[float, str]] = []

    def record(self, route: str, started: float, status: int) -> None:
        """One answer (status 0: no answer at all)."""
        now = time.perf_counter()
        self.latencies[route].append(now - started)
        if status == 409:  # a booking into booked time: the expected answer, not a fault
            self.conflicts[route] += 1
        elif status == 0 or status >= 400:
            self.errors[route] += 1
            self.error_times.append((now, route))


async def _eventually(probe: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await probe()
        if result:
            return result
        await asyncio.sleep(0.2)
    raise TimeoutError("set-up did not converge")


async def set_up(api: httpx.AsyncClient, admin_token: str, hook_url: str) -> dict[str, Any]:
    """An organization with mentors, mentees, a program, matches and a webhook."""
    admin = {"Authorization": f"Bearer {admin_token}"}
    org = (await api.post("/v1/organizations", json={"name": "Load"}, headers=admin)).json()
    made = await api.post(
        f"/v1/organizations/{org['id']}/api-keys", json={"name": "load"}, headers=admin
    )
    key = {"Authorization": f"Bearer {made.json()['key']}"}
    people = [f"M-{i}" for i in range(MENTORS)] + [f"E-{i}" for i in range(MENTEES)]
    records = [{"external_id": p, "email": f"{p.lower()}@load.example", "time_zone": "UTC",
                "languages": ["en"], "title": "Engineer"} for p in people]  # fmt: skip
    synced = await api.post("/v1/employees/bulk", json={"employees": records}, headers=key)
    assert synced.status_code == 200, synced.text
    program = await api.post(
        "/v1/programs",
        json={"name": "Load", "status": "open", "max_mentees_per_mentor": 5,
              "criteria": {"department_rule": "any"}},
        headers=key,
    )  # fmt: skip
    program_id = program.json()["id"]
    enrollments: dict[str, str] = {}
    for person in people:
        role = "mentor" if person.startswith("M-") else "mentee"
        level = 5 if role == "mentor" else 1
        body: dict[str, Any] = {"employee_external_id": person, "role": role, "languages": ["en"],
                                "skills": [{"name": "Python", "level": level}]}  # fmt: skip
        if role == "mentor":
            body["capacity"] = 5
        path = f"/v1/programs/{program_id}/enrollments"

        async def enrolled(body: dict[str, Any] = body, path: str = path) -> Any:
            answer = await api.post(path, json=body, headers=key)
            return answer if answer.status_code == 201 else None

        enrollments[person] = (await _eventually(enrolled)).json()["id"]
    matches: list[tuple[str, str]] = []
    for i in range(MENTEES):
        mentor, mentee = f"M-{i % MENTORS}", f"E-{i}"
        body = {"program_id": program_id, "mentor_enrollment_id": enrollments[mentor],
                "mentee_enrollment_id": enrollments[mentee]}  # fmt: skip

        async def matched(body: dict[str, Any] = body) -> Any:
            answer = await api.post("/v1/matches", json=body, headers=key)
            return answer if answer.status_code == 201 else None

        match_id = (await _eventually(matched)).json()["id"]
        await api.post(f"/v1/matches/{match_id}/accept", headers=key)
        matches.append((match_id, mentee))
    hook = await api.post(
        "/v1/webhooks",
        json={"url": hook_url, "event_types": ["mentorbus.person.upserted.v1",
                                               "mentorbus.session.scheduled.v1"]},
        headers=key,
    )  # fmt: skip
    assert hook.status_code == 201, hook.text

    async def sessions_know_matches() -> bool:
        answer = await api.post(
            "/v1/sessions",
            json={"match_id": matches[-1][0], "starts_at": "2030-01-01T09:00:00Z",
                  "duration_minutes": 30},
            headers=key,
        )  # fmt: skip
        return answer.status_code in (201, 409)

    await _eventually(sessions_know_matches)
    return {"key": key, "program_id": program_id, "enrollments": enrollments, "matches": matches}


async def one_request(
    api: httpx.AsyncClient, world: dict[str, Any], route: str, counter: list[int]
) -> int:
    """Send one request of `route`; returns its status (0: no answer)."""
    key, program_id = world["key"], world["program_id"]
    counter[0] += 1
    n = counter[0]
    try:
        if route == "POST /v1/employees/bulk":
            people = random.sample(range(MENTEES), 20)
            records = [{"external_id": f"E-{i}", "email": f"e-{i}@load.example",
                        "time_zone": "UTC", "languages": ["en"], "title": f"Engineer {n}"}
                       for i in people]  # fmt: skip
            answer = await api.post("/v1/employees/bulk", json={"employees": records}, headers=key)
        elif route == "GET suggestions":
            mentee = world["enrollments"][f"E-{random.randrange(MENTEES)}"]
            answer = await api.get(
                f"/v1/programs/{program_id}/enrollments/{mentee}/suggestions", headers=key
            )
        elif route == "POST /v1/sessions":
            match_id, _ = random.choice(world["matches"])
            day, slot = random.randrange(700), random.randrange(16)
            starts = time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_900_000_000 + day * 86400 + slot * 1800)
            )
            answer = await api.post(
                "/v1/sessions",
                json={"match_id": match_id, "starts_at": starts, "duration_minutes": 30},
                headers=key,
            )
        elif route == "POST check-ins":
            match_id, mentee = random.choice(world["matches"])
            answer = await api.post(
                f"/v1/matches/{match_id}/check-ins",
                json={"employee_external_id": mentee, "rating": random.randint(1, 5)},
                headers=key,
            )
        elif route == "GET analytics":
            answer = await api.get(f"/v1/programs/{program_id}/analytics", headers=key)
        else:
            answer = await api.get(f"/v1/employees/M-{random.randrange(MENTORS)}", headers=key)
        return answer.status_code
    except httpx.HTTPError:
        return 0


async def drive(
    api: httpx.AsyncClient, world: dict[str, Any], seconds: float, clients: int
) -> Results:
    """`clients` loops sending the weighted mix until time is up."""
    results = Results()
    routes, weights = list(WEIGHTS), list(WEIGHTS.values())
    stop = time.perf_counter() + seconds
    counter = [0]

    async def client() -> None:
        while time.perf_counter() < stop:
            route = random.choices(routes, weights)[0]
            started = time.perf_counter()
            results.record(route, started, await one_request(api, world, route, counter))

    await asyncio.gather(*(client() for _ in range(clients)))
    return results


async def baseline(api: httpx.AsyncClient, seconds: float, clients: int) -> list[float]:
    """The gateway's /healthz under the same client: the floor of a round trip."""
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < stop:
            started = time.perf_counter()
            await api.get("/healthz")
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies


def _quantiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        only = values[0] * 1000 if values else 0.0
        return only, only, only
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[94] * 1000, cuts[98] * 1000


def report(results: Results, seconds: float, base: list[float], base_seconds: float) -> None:
    """Print the table."""
    print(f"\n{'route':28} {'count':>7} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'p99 ms':>8} {'errors':>7} {'409s':>6}")  # fmt: skip
    total = 0
    for route in WEIGHTS:
        values = results.latencies.get(route, [])
        total += len(values)
        p50, p95, p99 = _quantiles(values)
        print(f"{route:28} {len(values):7} {len(values) / seconds:7.1f} {p50:8.1f} {p95:8.1f} "
              f"{p99:8.1f} {results.errors[route]:7} {results.conflicts[route]:6}")  # fmt: skip
    print(f"{'all routes':28} {total:7} {total / seconds:7.1f}"
          f"{'':27} {sum(results.errors.values()):7}")  # fmt: skip
    p50, p95, p99 = _quantiles(base)
    print(f"{'baseline GET /healthz':28} {len(base):7} {len(base) / base_seconds:7.1f} "
          f"{p50:8.1f} {p95:8.1f} {p99:8.1f}")  # fmt: skip


async def restart_later(stack: Stack, service: str, after: float, out: dict[str, float]) -> None:
    """Stop `service` (SIGTERM) after `after` seconds, start it again, time its readiness."""
    await asyncio.sleep(after)
    process = stack.processes[service]
    out["stopped_at"] = time.perf_counter()
    await asyncio.to_thread(process.stop)
    process.start()
    await asyncio.to_thread(wait_for_http, f"{stack.url(service)}/readyz", 120, process.process)
    out["ready_at"] = time.perf_counter()


async def main_async(args: argparse.Namespace) -> None:
    """Start a system, set up a world, drive it, report."""
    received = [0]

    async def hook(_: web.Request) -> web.Response:
        received[0] += 1
        return web.Response(text="ok")

    hook_port = free_port()
    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", hook_port).start()

    log_dir = Path(tempfile.mkdtemp(prefix="mentorbus-load-"))
    broker = Broker(log_dir)
    broker.start()
    stack = Stack.on_free_ports(
        bootstrap_servers=broker.bootstrap_servers,
        admin_token=secrets.token_urlsafe(32),
        log_dir=log_dir,
        database_prefix=f"mbload_{secrets.token_hex(3)}",
        extra_env={**UNLIMITED_RATES_ENV, **WEBHOOK_ENV},
    )
    try:
        print(f"starting the system (logs: {log_dir}) ...", flush=True)
        await asyncio.to_thread(stack.start, 180)
        limits = httpx.Limits(max_connections=args.clients * 2)
        async with httpx.AsyncClient(base_url=stack.url(), timeout=30, limits=limits) as api:
            world = await set_up(api, stack.admin_token, f"http://127.0.0.1:{hook_port}/hook")
            print(f"load: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, "
                  f"{args.clients} clients, {args.seconds:.0f} s", flush=True)  # fmt: skip
            base_seconds = 5.0
            base = await baseline(api, base_seconds, args.clients)
            received[0] = 0
            restart: dict[str, float] = {}
            started = time.perf_counter()
            restart_task = (
                asyncio.create_task(restart_later(stack, args.restart, args.seconds / 2, restart))
                if args.restart
                else None
            )
            results = await drive(api, world, args.seconds, args.clients)
            elapsed = time.perf_counter() - started
            report(results, elapsed, base, base_seconds)
            print(f"webhook deliveries received: {received[0]} ({received[0] / elapsed:.1f}/s)")
            if restart_task is not None:
                await restart_task
                stopped = restart["stopped_at"]
                failures = [t for t, _ in results.error_times if t >= stopped]
                by_route = collections.Counter(r for t, r in results.error_times if t >= stopped)
                last = max(failures, default=stopped)
                print(f"\nrestart of {args.restart}: {len(failures)} errors after the stop "
                      f"({dict(by_route)}); ready again after "
                      f"{restart['ready_at'] - stopped:.1f} s; last error "
                      f"{last - stopped:.1f} s after the stop")  # fmt: skip
    finally:
        await asyncio.to_thread(stack.stop)
        broker.stop()
        await runner.cleanup()
        for service in SERVICES:
            await drop_database(stack.database_url(service))


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--restart", choices=[s for s in SERVICES if s != "gateway"])
    args = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
