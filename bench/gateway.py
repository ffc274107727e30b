"""Benchmark of a plain read, `GET /v1/employees/{id}`, three ways in one run:

1. baseline: a bare FastAPI + asyncpg app reading the same kind of row (no ORM, no
   middleware), served by uvicorn with the same flags as the services;
2. direct: straight to the profiles service (the whole system running);
3. gateway: through the gateway (API key check, routing, forwarding).

One load generator (aiohttp, its own process, 64 connections) measures all three.
Prints req/s, p50 and p99 for each, and the ratios the aims name: direct >= 0.5x bare,
gateway >= 0.8x direct (median over rounds in alternating order), gateway p99 - direct p99
< 3 ms (at a fixed rate both sustain: under saturation a p99 is the queue behind the busy
cores, which the saturated rounds print too). Beside each target, the CPU time
per request of every process that served it (from /proc), which says where a ratio comes
from on a machine whose cores the load generator, the services and PostgreSQL share.

    .venv/bin/python bench/gateway.py [--seconds 8] [--connections 64] [--rounds 3] [--rate 300]
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

from devstack.broker import Broker
from devstack.cpu import CpuMeter, process_seconds
from devstack.processes import ChildProcess, free_port, python_command, wait_for_http
from devstack.stack import SERVICES, Stack
from shared.db import asyncpg_dsn, drop_database, ensure_database
from shared.identity import ALL_SCOPES, Caller, sign_identity

POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432"

BARE_APP = """
import os, asyncpg
from fastapi import FastAPI, HTTPException

app = FastAPI()

@app.on_event("startup")
async def start() -> None:
    app.state.pool = await asyncpg.create_pool(os.environ["BARE_DSN"], min_size=10, max_size=10)

@app.get("/v1/employees/{external_id}")
async def get_employee(external_id: str) -> dict:
    row = await app.state.pool.fetchrow(
        "SELECT external_id, email, given_name, family_name, time_zone, languages, version"
        " FROM person WHERE external_id = $1", external_id)
    if row is None:
        raise HTTPException(404)
    return dict(row)
"""


def load(
    url: str,
    headers: dict[str, str],
    seconds: float,
    connections: int,
    rate: float | None,
    out: object,
) -> None:
    """Run in a child process: hammer `url` (or, with `rate`, send that many requests a
    second on a fixed schedule), send back (requests, latencies, errors)."""
    import aiohttp

    async def run() -> tuple[int, list[float], int]:
        latencies: list[float] = []
        errors = 0
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
            warm_until = time.perf_counter() + 1.0
            stop = warm_until + seconds

            async def one(now: float) -> None:
                nonlocal errors
                async with session.get(url) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                if now >= warm_until:
                    latencies.append(time.perf_counter() - now)

            async def worker() -> None:
                while (now := time.perf_counter()) < stop:
                    await one(now)

            async def scheduled() -> None:
                assert rate is not None
                sending: set[asyncio.Task[None]] = set()
                due = time.perf_counter()
                while due < stop:
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                    task = asyncio.create_task(one(time.perf_counter()))
                    sending.add(task)
                    task.add_done_callback(sending.discard)
                    due += 1 / rate
                await asyncio.gather(*sending)

            if rate is None:
                await asyncio.gather(*(worker() for _ in range(connections)))
            else:
                await scheduled()
        return len(latencies), latencies, errors

    out.send(asyncio.run(run()))  # type: ignore[attr-defined]


def measure(
    name: str,
    url: str,
    headers: dict[str, str],
    seconds: float,
    connections: int,
    servers: dict[str, int],
    rate: float | None = None,
) -> dict[str, float]:
    """req/s, p50 and p99 (ms) of one target (as fast as it answers, or at a fixed `rate`),
    and the CPU per request of each of `servers` (name: pid), of PostgreSQL, of the load
    generator and of the whole machine."""
    receiver, sender = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.Process(
        target=load, args=(url, headers, seconds, connections, rate, sender)
    )
    meter = CpuMeter(servers)
    meter.start()
    child.start()
    assert child.pid is not None
    count, latencies, errors = receiver.recv()
    meter.stop()
    # Read before the child exits: a finished process's /proc entry goes with it.
    meter.attribute("load generator", process_seconds(child.pid))
    child.join()
    latencies.sort()
    result = {
        "rps": count / seconds,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[int(0.99 * (len(latencies) - 1))] * 1000,
        "errors": errors,
    }
    print(
        f"{name:<28} {result['rps']:>8.0f} req/s   p50 {result['p50']:6.2f} ms   "
        f"p99 {result['p99']:6.2f} ms   non-200: {errors}",
        flush=True,
    )
    # The CPU time includes the 1 s warm-up: per request over everything sent.
    served = count * (seconds + 1.0) / seconds
    print(f"{'':<28} CPU per request: {meter.per_unit(served)}", flush=True)
    return result


async def bare_database(url: str) -> None:
    """A throwaway database with one employee row, shaped like profiles' person table."""
    await ensure_database(url)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS person (external_id text PRIMARY KEY, email text,"
            " given_name text, family_name text, time_zone text, languages text[],"
            " version int)"
        )
        await conn.execute(
            "INSERT INTO person VALUES ('E-1', 'ada@acme.com', 'Ada', 'Lovelace',"
            " 'Europe/London', '{en}', 1) ON CONFLICT DO NOTHING"
        )
    finally:
        await conn.close()


async def setup_tenant(stack: Stack) -> dict[str, str]:
    """An organization, its key and one employee; the key's headers."""
    async with httpx.AsyncClient(base_url=stack.url(), timeout=30) as api:
        admin = {"Authorization": f"Bearer {stack.admin_token}"}
        org = (await api.post("/v1/organizations", json={"name": "bench"}, headers=admin)).json()
        path = f"/v1/organizations/{org['id']}/api-keys"
        key = (await api.post(path, json={"name": "b"}, headers=admin)).json()["key"]
        headers = {"Authorization": f"Bearer {key}"}
        body = {"email": "ada@acme.com", "given_name": "Ada", "time_zone": "Europe/London"}
        created = await api.put("/v1/employees/E-1", json=body, headers=headers)
        assert created.status_code in (200, 201), created.text
        return {**headers, "x-mentorbus-org-id": org["id"]}


def main() -> None:
    """Start everything, measure the three targets, print the figures and ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=300.0, help="the fixed-rate phase")
    args = parser.parse_args()
    run_id = secrets.token_hex(3)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    bare_url = f"{POSTGRES}/mbbench_{run_id}_bare"
    broker = Broker(log_dir)
    broker.start()
    stack = Stack.on_free_ports(
        bootstrap_servers=broker.bootstrap_servers,
        admin_token=secrets.token_urlsafe(32),
        log_dir=log_dir,
        database_prefix=f"mbbench_{run_id}",
        # Counted as always, but a budget this load cannot spend (the default, 6,000 a
        # minute, would answer 429 after a few seconds).
        extra_env={"MENTORBUS_RATE_LIMIT_REQUESTS": str(10**9)},
    )
    app_file = log_dir / "bare_app.py"
    app_file.write_text(BARE_APP)
    bare_port = free_port()
    bare = ChildProcess(
        "bare",
        python_command(
            "-m", "uvicorn", "bare_app:app", "--app-dir", str(log_dir), "--host", "127.0.0.1",
            "--port", str(bare_port), "--no-access-log", "--log-level", "warning",
        ),
        {"BARE_DSN": asyncpg_dsn(bare_url)},
        log_dir,
    )  # fmt: skip
    try:
        asyncio.run(bare_database(bare_url))
        bare.start()
        stack.start()
        wait_for_http(f"http://127.0.0.1:{bare_port}/v1/employees/E-1", 60, bare.process)
        headers = asyncio.run(setup_tenant(stack))
        # Straight to profiles, the identity the gateway would sign for this one request
        # (a signature covers method and target, so one serves the whole run).
        caller = Caller(org_id=uuid.UUID(headers.pop("x-mentorbus-org-id")), is_admin=False,
                        scopes=(ALL_SCOPES,))  # fmt: skip
        org_header = sign_identity(
            caller.headers(), method="GET", target=b"/v1/employees/E-1",
            secret=stack.identity_secret, ttl_seconds=600,
        )  # fmt: skip
        print(
            f"GET /v1/employees/E-1, {args.connections} connections, {args.seconds:.0f} s each"
            f" (after 1 s warm-up), this machine, the whole system running;"
            f" load average before: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)\n",
            flush=True,
        )
        n, secs = args.connections, args.seconds
        pids = {name: p.process.pid for name, p in stack.processes.items() if p.process}
        assert bare.process is not None
        bare_target = f"http://127.0.0.1:{bare_port}/v1/employees/E-1"
        direct_url = f"{stack.url('profiles')}/v1/employees/E-1"
        gateway_url = f"{stack.url()}/v1/employees/E-1"
        on_direct = {"profiles": pids["profiles"]}
        on_gateway = {"gateway": pids["gateway"], "profiles": pids["profiles"]}
        on_bare = {"bare": bare.process.pid}
        base = measure("bare FastAPI + asyncpg", bare_target, {}, secs, n, on_bare)
        # Rounds in alternating order: drift in the machine's speed (other tenants, CPU
        # frequency) then favours neither target, and the median ratio says what is typical.
        rounds: list[tuple[dict[str, float], dict[str, float]]] = []
        for r in range(args.rounds):
            print(f"round {r + 1}:", flush=True)
            if r % 2 == 0:
                direct = measure("profiles, direct", direct_url, org_header, secs, n, on_direct)
                gateway = measure("through the gateway", gateway_url, headers, secs, n, on_gateway)
            else:
                gateway = measure("through the gateway", gateway_url, headers, secs, n, on_gateway)
                direct = measure("profiles, direct", direct_url, org_header, secs, n, on_direct)
            rounds.append((direct, gateway))
        # The hop's own latency: both targets at a rate each sustains with room to spare,
        # so the difference is the gateway's work, not a queue behind saturated cores.
        print(f"at a fixed {args.rate:.0f} req/s:", flush=True)
        slow_direct = measure(
            "profiles, direct", direct_url, org_header, secs, n, on_direct, rate=args.rate
        )
        slow_gateway = measure(
            "through the gateway", gateway_url, headers, secs, n, on_gateway, rate=args.rate
        )
        direct_rps = statistics.median(d["rps"] for d, _ in rounds)
        ratios = sorted(g["rps"] / d["rps"] for d, g in rounds)
        p99s = sorted(g["p99"] - d["p99"] for d, g in rounds)
        print(
            f"\ndirect / bare      {direct_rps / base['rps']:.2f}x   (aim >= 0.5; median direct)\n"
            f"gateway / direct   {statistics.median(ratios):.2f}x   (aim >= 0.8; median of"
            f" {len(ratios)} rounds: {', '.join(f'{x:.2f}' for x in ratios)})\n"
            f"gateway p99 - direct p99, saturated   {statistics.median(p99s):.2f} ms"
            f" (median of the rounds)\n"
            f"gateway p99 - direct p99 at {args.rate:.0f} req/s"
            f"   {slow_gateway['p99'] - slow_direct['p99']:.2f} ms   (aim < 3 ms)\n"
            f"gateway p50 - direct p50 at {args.rate:.0f} req/s"
            f"   {slow_gateway['p50'] - slow_direct['p50']:.2f} ms\n"
            f"load average after: {os.getloadavg()[0]:.1f} (other work on the machine skews all"
            " targets; compare the ratios of one run)",
            flush=True,
        )
        report = {"bare": base, "rounds": rounds, "fixed_rate": [slow_direct, slow_gateway]}
        print(json.dumps(report), file=sys.stderr)
    finally:
        bare.stop()
        stack.stop()
        broker.stop()

        async def drop() -> None:
            await drop_database(bare_url)
            for service in SERVICES:
                await drop_database(stack.database_url(service))

        asyncio.run(drop())
        print(f"logs: {log_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
