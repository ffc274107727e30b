"""Benchmark of `GET /v1/programs/{id}/outcomes`' computation: an organization of 100,000
employees with two years of effective-dated HRIS history (hires, promotions, leavers),
20,000 participants in 10,000 activated matches with tracks and agreements, in feedback's
own tables on a throwaway database. Prints the use case's time beside a baseline measured
in the same run: the same retention and promotion figures computed the obvious way (every
history row fetched and walked in Python).

    .venv/bin/python bench/outcomes.py [--people 100000] [--participants 20000]
"""

import argparse
import asyncio
import json
import os
import random
import time
import uuid
from bisect import bisect_right
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text

from services.feedback import outcomes
from shared.db import (
    SHARED_MIGRATIONS,
    asyncpg_dsn,
    drop_database,
    ensure_database,
    make_engine,
    make_sessionmaker,
    migrate,
)

MIGRATIONS = Path(__file__).parents[1] / "services" / "feedback" / "migrations"
DEPARTMENTS = [f"Dept-{i}" for i in range(40)]
TODAY = date.today()
HISTORY_START = TODAY - timedelta(days=730)
PROGRAM_START = TODAY - timedelta(days=400)
MODULES: list[dict[str, Any]] = [
    {"title": f"M{m}", "steps": [
        {"id": f"s{m}{s}", "kind": "task", "title": "t", "due_day": 30 * (m + 1),
         "completed_by": ("mentee", "mentor", "both")[s]} for s in range(3)]}
    for m in range(2)
]  # fmt: skip


def backend_cpu(pid: int) -> float:
    """CPU seconds a PostgreSQL backend (on this machine) has used: unlike wall time, not
    inflated by other processes competing for the cores."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def history(rng: random.Random, org_id: uuid.UUID, n: int) -> list[tuple[Any, ...]]:
    """person_history rows: a first state (most before the window), promotions, leavers."""
    rows = []
    for i in range(n):
        person_id, external_id = uuid.UUID(int=i + 1), f"E{i:06d}"
        department = rng.choice(DEPARTMENTS)
        day = HISTORY_START - timedelta(days=rng.randrange(0, 2000))
        if rng.random() < 0.15:  # hired during the two years
            day = HISTORY_START + timedelta(days=rng.randrange(0, 700))
        level = rng.randrange(1, 6)
        rows.append((person_id, day, org_id, external_id, 1, "active", level, department))
        version = 1
        while True:
            day += timedelta(days=rng.randrange(120, 500))
            if day > TODAY:
                break
            version += 1
            if rng.random() < 0.12:
                rows.append((person_id, day, org_id, external_id, version, "inactive", level,
                             department))  # fmt: skip
                break
            level += 1
            rows.append((person_id, day, org_id, external_id, version, "active", level,
                         department))  # fmt: skip
    # The derived columns history.py keeps: the next entry's date, the previous level.
    out = []
    for k, row in enumerate(rows):
        after = rows[k + 1] if k + 1 < len(rows) and rows[k + 1][0] == row[0] else None
        before = rows[k - 1] if k > 0 and rows[k - 1][0] == row[0] else None
        out.append((*row, after[1] if after else None, before[6] if before else None))
    return out


async def load(url: str, n_people: int, n_participants: int) -> tuple[uuid.UUID, uuid.UUID]:
    """Fill a migrated feedback database; the organization and program ids."""
    rng = random.Random(7)
    org_id, program_id = uuid.uuid4(), uuid.uuid4()
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(
            "INSERT INTO program (id, org_id, name, format, status, starts_on, version)"
            " VALUES ($1, $2, 'Bench', 'one_to_one', 'active', $3, 1)",
            program_id, org_id, PROGRAM_START,
        )  # fmt: skip
        await conn.copy_records_to_table(
            "person_history",
            columns=["person_id", "effective_date", "org_id", "external_id", "version",
                     "employment_status", "job_level", "department", "next_date",
                     "prev_job_level"],
            records=history(rng, org_id, n_people),
        )  # fmt: skip
        people = rng.sample(range(n_people), n_participants + n_participants // 10)
        enrollments = [
            (uuid.uuid4(), org_id, program_id, uuid.UUID(int=i + 1), f"E{i:06d}",
             "mentee" if k % 2 == 0 else "mentor", "active", 1)
            for k, i in enumerate(people)
        ]  # fmt: skip
        await conn.copy_records_to_table(
            "enrollment",
            columns=["id", "org_id", "program_id", "person_id", "employee_external_id", "role",
                     "status", "version"],
            records=enrollments,
        )  # fmt: skip
        matches, tracks, completions, agreements = [], [], [], []
        track_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO track (id, org_id, program_id, name, version, modules)"
            " VALUES ($1, $2, $3, 'T', 1, $4)",
            track_id, org_id, program_id, json.dumps(MODULES),
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO track_version (track_id, version, modules) VALUES ($1, 1, $2)",
            track_id, json.dumps(MODULES),
        )  # fmt: skip
        for k in range(0, n_participants, 2):
            mentee, mentor = enrollments[k], enrollments[k + 1]
            match_id = uuid.uuid4()
            activated = datetime.combine(
                PROGRAM_START + timedelta(days=rng.randrange(0, 60)), datetime.min.time(), UTC
            )
            matches.append((match_id, org_id, program_id, mentee[0], mentor[0], mentee[3],
                            mentor[3], mentee[4], mentor[4], "active", 3, activated))  # fmt: skip
            tracks.append((match_id, org_id, program_id, track_id, 1, activated.date()))
            done_steps = rng.randrange(0, 7)
            for s, step in enumerate(s for m in MODULES for s in m["steps"]):
                if s >= done_steps:
                    break
                at = activated + timedelta(days=rng.randrange(1, 90))
                for role in ("mentee", "mentor"):
                    if step["completed_by"] in (role, "both"):
                        completions.append((match_id, step["id"], role, "x", at))
            signed = activated + timedelta(days=rng.randrange(1, 30))
            agreements.append((match_id, org_id, program_id, "{}", "text", 1,
                               "signed" if rng.random() < 0.7 else "draft", activated,
                               signed))  # fmt: skip
        await conn.copy_records_to_table(
            "match",
            columns=["id", "org_id", "program_id", "mentee_enrollment_id", "mentor_enrollment_id",
                     "mentee_person_id", "mentor_person_id", "mentee_external_id",
                     "mentor_external_id", "status", "version", "activated_at"],
            records=matches,
        )  # fmt: skip
        await conn.copy_records_to_table(
            "match_track",
            columns=["match_id", "org_id", "program_id", "track_id", "version", "started_on"],
            records=tracks,
        )  # fmt: skip
        await conn.copy_records_to_table(
            "step_completion",
            columns=["match_id", "step_id", "role", "employee_external_id", "completed_at"],
            records=completions,
        )  # fmt: skip
        await conn.execute(
            "UPDATE match_track mt SET completed_at = now() WHERE (SELECT count(*) FROM"
            " step_completion c WHERE c.match_id = mt.match_id) = 9"
        )
        await conn.copy_records_to_table(
            "agreement",
            columns=["match_id", "org_id", "program_id", "terms", "text", "version", "status",
                     "created_at", "signed_at"],
            records=agreements,
        )  # fmt: skip
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return org_id, program_id


async def baseline(
    url: str, org_id: uuid.UUID, program_id: uuid.UUID
) -> tuple[dict[str, Any], float]:
    """Retention and promotions the obvious way: every history row into Python. Also the
    CPU seconds its database backend used."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    pid = await conn.fetchval("SELECT pg_backend_pid()")
    db_started = backend_cpu(pid)
    try:
        rows = await conn.fetch(
            "SELECT external_id, effective_date, employment_status, job_level, department"
            " FROM person_history WHERE org_id = $1 ORDER BY person_id, effective_date",
            org_id,
        )
        matched = await conn.fetch(
            "SELECT mentee_external_id, mentor_external_id FROM match WHERE program_id = $1",
            program_id,
        )
        enrolled = {
            r[0]
            for r in await conn.fetch(
                "SELECT employee_external_id FROM enrollment WHERE program_id = $1", program_id
            )
        }
        db_cpu = backend_cpu(pid) - db_started
    finally:
        await conn.close()
    people: dict[str, list[Any]] = {}
    for r in rows:
        people.setdefault(r["external_id"], []).append(r)
    participants = {x for m in matched for x in m}

    def state(entries: list[Any], day: date) -> Any:
        i = bisect_right([e["effective_date"] for e in entries], day)
        return entries[i - 1] if i else None

    def employed(entries: list[Any], day: date) -> bool:
        s = state(entries, day)
        return s is not None and s["employment_status"] != "inactive"

    departments = {
        s["department"]
        for p in participants
        if (s := state(people.get(p, []), PROGRAM_START)) is not None
    }
    comparison = {
        p for p, e in people.items()
        if p not in enrolled and employed(e, PROGRAM_START)
        and state(e, PROGRAM_START)["department"] in departments
    }  # fmt: skip
    figures: dict[str, Any] = {}
    for name, group in (("participants", participants), ("comparison", comparison)):
        base = [p for p in group if p in people and employed(people[p], PROGRAM_START)]
        kept = {
            n: sum(employed(people[p], outcomes.add_months(PROGRAM_START, n)) for p in base)
            for n in (3, 6, 12)
        }
        promotions = sum(
            1
            for p in group
            for a, b in zip(people.get(p, []), people.get(p, [])[1:], strict=False)
            if PROGRAM_START <= b["effective_date"] <= TODAY
            and a["job_level"] is not None and b["job_level"] is not None
            and b["job_level"] > a["job_level"]
        )  # fmt: skip
        figures[name] = {"of": len(base), "kept": kept, "promotions": promotions}
    return figures, db_cpu


async def main(n_people: int, n_participants: int) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/mbbench_outcomes_{uuid.uuid4().hex[:8]}"
    await ensure_database(url)
    try:
        await migrate(url, SHARED_MIGRATIONS, MIGRATIONS)
        started = time.perf_counter()
        org_id, program_id = await load(url, n_people, n_participants)
        conn = await asyncpg.connect(asyncpg_dsn(url))
        n_rows = await conn.fetchval("SELECT count(*) FROM person_history")
        await conn.close()
        print(
            f"loaded {n_people:,} people ({n_rows:,} history rows), {n_participants:,}"
            f" participants in {time.perf_counter() - started:.1f}s"
        )
        engine = make_engine(url, pool_size=2)
        sessions = make_sessionmaker(engine)
        samples, cpu = [], []
        figures: dict[str, Any] = {}
        for _ in range(3):
            async with sessions() as session:
                pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                started, cpu_started = time.perf_counter(), time.process_time()
                db_started = backend_cpu(pid)
                figures = await outcomes.program_outcomes(session, org_id, program_id, TODAY)
                samples.append(time.perf_counter() - started)
                cpu.append(time.process_time() - cpu_started + backend_cpu(pid) - db_started)
        await engine.dispose()
        base_samples, base_cpu = [], []
        reference: dict[str, Any] = {}
        for _ in range(2):
            started, cpu_started = time.perf_counter(), time.process_time()
            reference, db_cpu = await baseline(url, org_id, program_id)
            base_samples.append(time.perf_counter() - started)
            base_cpu.append(time.process_time() - cpu_started + db_cpu)
        for name in ("participants", "comparison"):
            got = figures["retention"]["months_12"][name]
            assert (got["count"], got["of"]) == (reference[name]["kept"][12],
                                                 reference[name]["of"]), (name, got)  # fmt: skip
            assert figures["promotions"][name]["count"] == reference[name]["promotions"]
        best, base_best = min(samples), min(base_samples)
        print(
            f"outcomes (use case, all figures): wall best {best:.2f}s of {len(samples)}"
            f" (aim < 2 s), CPU (Python + PostgreSQL backend) {min(cpu):.2f}s; baseline"
            f" (history into Python, retention and promotions only): wall {base_best:.2f}s,"
            f" CPU {min(base_cpu):.2f}s -> {base_best / best:.1f}x wall,"
            f" {min(base_cpu) / min(cpu):.1f}x CPU; load average {os.getloadavg()[0]:.1f}"
            f" on {os.cpu_count()} cores"
        )
        print(
            f"participants {figures['groups']['participants']['count']:,}, comparison"
            f" {figures['groups']['comparison']['count']:,}; retention 12 months"
            f" {figures['retention']['months_12']['participants']['rate']} vs"
            f" {figures['retention']['months_12']['comparison']['rate']}"
        )
    finally:
        await drop_database(url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--participants", type=int, default=20_000)
    args = parser.parse_args()
    asyncio.run(main(args.people, args.participants))
