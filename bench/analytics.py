"""Benchmark of program analytics: a program of 10,000 matches, 200,000 session
occurrences and 400,000 feedback answers (seeded with set-based SQL into the feedback
service's throwaway database), timed through the gateway and on the service directly,
beside a trivial GET of the same service measured in the same run as the baseline.

    .venv/bin/python bench/analytics.py [--matches 10000] [--sessions 200000]
                                        [--answers 400000] [--runs 20]
"""

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

from devstack.broker import Broker
from devstack.stack import SERVICES, Stack
from shared.db import asyncpg_dsn, drop_database
from shared.identity import Caller

SEED = """
INSERT INTO program (id, org_id, name, format, status, version)
VALUES ($1, $2, 'Bench', 'one_to_one', 'active', 1);

INSERT INTO enrollment (id, org_id, program_id, person_id, employee_external_id, role,
                        status, version, created_at)
SELECT uuid_generate_v5($1, 'e' || i), $2, $1, gen_random_uuid(),
       CASE WHEN i <= {matches} THEN 'E-' || i ELSE 'M-' || i END,
       CASE WHEN i <= {matches} THEN 'mentee' ELSE 'mentor' END, 'active', 1,
       timestamptz '2025-01-01' + (i % 60) * interval '1 day'
FROM generate_series(1, {matches} + {matches} / 2) AS i;

INSERT INTO match (id, org_id, program_id, mentee_enrollment_id, mentor_enrollment_id,
                   mentee_external_id, mentor_external_id, status, score, version,
                   created_at, activated_at, ended_at)
SELECT uuid_generate_v5($1, 'm' || i), $2, $1, uuid_generate_v5($1, 'e' || i),
       uuid_generate_v5($1, 'e' || ({matches} + 1 + i % ({matches} / 2))),
       'E-' || i, 'M-' || ({matches} + 1 + i % ({matches} / 2)),
       CASE WHEN i % 10 = 0 THEN 'ended' ELSE 'active' END, 0.5, 2,
       timestamptz '2025-03-01' + (i % 30) * interval '1 day',
       timestamptz '2025-03-02' + (i % 30) * interval '1 day',
       CASE WHEN i % 10 = 0 THEN timestamptz '2025-09-01' END
FROM generate_series(1, {matches}) AS i;

INSERT INTO session_occurrence (org_id, session_id, occurrence_starts_at, program_id,
                                match_id, held_at, status, version)
SELECT $2, uuid_generate_v5($1, 's' || i), NULL, $1,
       uuid_generate_v5($1, 'm' || (1 + i % {matches})),
       timestamptz '2025-03-10' + (i % 300) * interval '1 day' + (i % 24) * interval '1 hour',
       CASE WHEN i % 20 = 0 THEN 'cancelled' WHEN i % 33 = 0 THEN 'no_show'
            ELSE 'completed' END, 2
FROM generate_series(1, {sessions}) AS i;

INSERT INTO feedback_request (id, org_id, kind, program_id, match_id, session_id,
                              employee_external_id, role, status, created_at, expires_at,
                              answered_at)
SELECT uuid_generate_v5($1, 'r' || i), $2,
       CASE WHEN i % 40 = 0 THEN 'match_end' ELSE 'session' END, $1,
       uuid_generate_v5($1, 'm' || (1 + (i / 2) % {matches})),
       CASE WHEN i % 40 = 0 THEN NULL ELSE uuid_generate_v5($1, 's' || (i / 2)) END,
       CASE WHEN i % 2 = 0 THEN 'E-' ELSE 'M-' END || i,
       CASE WHEN i % 2 = 0 THEN 'mentee' ELSE 'mentor' END, 'answered',
       timestamptz '2025-03-10' + (i % 300) * interval '1 day',
       timestamptz '2025-03-24' + (i % 300) * interval '1 day',
       timestamptz '2025-03-11' + (i % 300) * interval '1 day'
FROM generate_series(1, {answers}) AS i;

INSERT INTO feedback (id, org_id, request_id, kind, program_id, match_id, session_id,
                      employee_external_id, role, rating, nps, tags, created_at, updated_at)
SELECT gen_random_uuid(), r.org_id, r.id, r.kind, r.program_id, r.match_id, r.session_id,
       r.employee_external_id, r.role, 1 + abs(hashtext(r.id::text)) % 5,
       CASE WHEN r.kind = 'match_end' THEN abs(hashtext(r.id::text || 'n')) % 11 END,
       '{{}}', r.answered_at, r.answered_at
FROM feedback_request r WHERE r.program_id = $1;

INSERT INTO goal (id, org_id, match_id, program_id, mentee_external_id, title, status,
                  progress, version, created_at, updated_at, completed_at)
SELECT gen_random_uuid(), $2, uuid_generate_v5($1, 'm' || (1 + i % {matches})), $1, 'E-' || i,
       'Goal ' || i, CASE WHEN i % 3 = 0 THEN 'completed' ELSE 'in_progress' END,
       CASE WHEN i % 3 = 0 THEN 100 ELSE 40 END, 1,
       timestamptz '2025-03-15' + (i % 200) * interval '1 day',
       timestamptz '2025-03-15' + (i % 200) * interval '1 day', NULL
FROM generate_series(1, {matches} * 2) AS i;

-- The daily rollups the service keeps as answers and outcomes arrive (migration 0004).
INSERT INTO feedback_daily
SELECT program_id, (created_at AT TIME ZONE 'UTC')::date, coalesce(role, ''), count(*),
       sum(rating), count(*) FILTER (WHERE nps >= 9),
       count(*) FILTER (WHERE nps BETWEEN 7 AND 8), count(*) FILTER (WHERE nps <= 6)
FROM feedback WHERE program_id = $1 GROUP BY 1, 2, 3;

INSERT INTO session_daily
SELECT program_id, (held_at AT TIME ZONE 'UTC')::date, status, count(*)
FROM session_occurrence WHERE program_id = $1 GROUP BY 1, 2, 3;

INSERT INTO match_feedback
SELECT match_id, count(*), sum(rating) FROM feedback WHERE program_id = $1 GROUP BY 1
"""


async def seed(
    stack: Stack, org_id: uuid.UUID, program_id: uuid.UUID, matches: int, sessions: int,
    answers: int,
) -> float:  # fmt: skip
    """Fill the feedback database with one program's rows; returns seconds taken."""
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url("feedback")))
    started = time.perf_counter()
    try:
        await conn.execute('CREATE EXTENSION IF NOT EXISTS "uuid-ossp"')
        async with conn.transaction():
            sql = SEED.format(matches=int(matches), sessions=int(sessions), answers=int(answers))
            for statement in sql.split(";\n\n"):
                args = (program_id, org_id) if "$2" in statement else (program_id,)
                await conn.execute(statement, *args)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def timed(client: httpx.AsyncClient, path: str, runs: int, **kw: object) -> list[float]:
    """Seconds per sequential GET (after one warm-up)."""
    (await client.get(path, **kw)).raise_for_status()  # type: ignore[arg-type]
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = await client.get(path, **kw)  # type: ignore[arg-type]
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    return times


def report(label: str, times: list[float]) -> None:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    print(f"  {label:<52} median {statistics.median(times) * 1000:8.1f} ms   "
          f"p95 {p95 * 1000:8.1f} ms")  # fmt: skip


async def run(args: argparse.Namespace, stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url(), timeout=60) as api:
        admin = {"Authorization": f"Bearer {stack.admin_token}"}
        org = (await api.post("/v1/organizations", json={"name": "bench"}, headers=admin)).json()
        path = f"/v1/organizations/{org['id']}/api-keys"
        issued = await api.post(path, json={"name": "b"}, headers=admin)
        key = {"Authorization": f"Bearer {issued.json()['key']}"}
        org_id, program_id = uuid.UUID(org["id"]), uuid.uuid4()
        seconds = await seed(stack, org_id, program_id, args.matches, args.sessions, args.answers)
        print(
            f"seeded {args.matches:,} matches, {args.sessions:,} session occurrences, "
            f"{args.answers:,} answers, {args.matches * 2:,} goals in {seconds:.1f} s"
        )
        analytics = f"/v1/programs/{program_id}/analytics"
        print(f"{args.runs} sequential requests each:")
        report("baseline: GET /v1/feedback-requests?limit=1 (gateway)", await timed(
            api, "/v1/feedback-requests", args.runs, params={"limit": 1}, headers=key))  # fmt: skip
        report("analytics JSON (gateway)", await timed(api, analytics, args.runs, headers=key))
        report("analytics CSV (gateway)", await timed(
            api, analytics, args.runs, headers={**key, "Accept": "text/csv"}))  # fmt: skip
        report("analytics JSON, from/to one quarter (gateway)", await timed(
            api, analytics, args.runs, headers=key,
            params={"from": "2025-04-01", "to": "2025-06-30"}))  # fmt: skip
        report("at-risk, 9,000 active matches (gateway)", await timed(
            api, f"/v1/programs/{program_id}/at-risk", args.runs, headers=key,
            params={"limit": 200}))  # fmt: skip
    headers = Caller(org_id, False).headers()
    async with httpx.AsyncClient(base_url=stack.url("feedback"), headers=headers) as service:
        report("baseline: GET /healthz (feedback service)", await timed(
            service, "/healthz", args.runs))  # fmt: skip
        report("analytics JSON (feedback service)", await timed(service, analytics, args.runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matches", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=200_000)
    parser.add_argument("--answers", type=int, default=400_000)
    parser.add_argument("--runs", type=int, default=20)
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
        asyncio.run(run(args, stack))
    finally:
        stack.stop()
        broker.stop()
        asyncio.run(_drop(stack))


async def _drop(stack: Stack) -> None:
    for service in SERVICES:
        await drop_database(stack.database_url(service))


if __name__ == "__main__":
    main()
