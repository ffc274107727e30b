"""Cohort matching runs: queued, prepared from a fresh pool, and applied (turned into
proposed matches, re-checked against the state as it is then)."""

import asyncio
import itertools
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic_core import to_json
from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from services.matching import publish
from services.matching.criteria import Participant
from services.matching.domain import get_program
from services.matching.explain import hard_rule_violations
from services.matching.lifecycle import breakdown_rows, new_match, pair_explanation
from services.matching.memory import collector_paused
from services.matching.models import MatchingRun
from services.matching.planner import Plan, RunOptions
from services.matching.pool import (
    POOLS,
    Load,
    Pool,
    bump_revision,
    driver,
    load_pool,
    lock_participants,
    mentor_loads,
)
from services.matching.scoring import MentorIndex, ScoringModel
from shared.db import utcnow
from shared.errors import Conflict, NotFound

# --- matching runs ----------------------------------------------------------------------


# Serializes the open-run count of one program (two concurrent requests both seeing one
# place free would otherwise both queue a run).
_LOCK_PROGRAM_RUNS = "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))"


async def create_run(
    session: AsyncSession,
    org_id: uuid.UUID,
    program_id: uuid.UUID,
    options: dict[str, Any],
    *,
    max_open: int = 2,
) -> MatchingRun:
    """Queue a cohort run; a worker picks it up. A program has at most `max_open` runs
    pending or running at once: one more is a 409 (a run reads the whole pool; queuing
    copies of it only delays everyone's runs)."""
    program = await get_program(session, org_id, program_id)
    if program.status == "closed":
        raise Conflict(f"program {program_id} is closed")
    await (await driver(session)).execute(_LOCK_PROGRAM_RUNS, str(program_id))
    open_runs = await session.scalar(
        select(func.count())
        .select_from(MatchingRun)
        .where(
            MatchingRun.program_id == program_id,
            MatchingRun.status.in_(("pending", "running")),
        )
    )
    if (open_runs or 0) >= max_open:
        raise Conflict(
            f"program {program_id} has {open_runs} matching runs pending or running "
            f"(at most {max_open}); wait for one to finish"
        )
    run = MatchingRun(
        id=uuid.uuid4(),
        org_id=org_id,
        program_id=program_id,
        status="pending",
        objective=options.get("objective", "max_score"),
        options=options,
        progress=0.0,
        warnings=[],
        timings={},
        attempts=0,
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    session.add(run)
    await session.flush()
    return run


async def get_run(session: AsyncSession, org_id: uuid.UUID, run_id: uuid.UUID) -> MatchingRun:
    """A run of the organization."""
    run = await session.get(MatchingRun, run_id)
    if run is None or run.org_id != org_id:
        raise NotFound(f"matching run {run_id} not found")
    return run


async def list_runs(
    session: AsyncSession,
    org_id: uuid.UUID,
    program_id: uuid.UUID,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[MatchingRun]:
    """A program's runs, newest first."""
    await get_program(session, org_id, program_id)
    query = select(MatchingRun).where(
        MatchingRun.org_id == org_id, MatchingRun.program_id == program_id
    )
    if before is not None:
        query = query.where(tuple_(MatchingRun.created_at, MatchingRun.id) < before)
    query = query.order_by(MatchingRun.created_at.desc(), MatchingRun.id.desc()).limit(limit)
    return (await session.scalars(query)).all()


@dataclass
class RunInputs:
    """What a run computes on: the model and how its rows map back to enrollments."""

    pool: Pool
    model: ScoringModel
    options: RunOptions
    warnings: list[str]


def _load(pool: Pool, mentor: Participant) -> Load:
    return pool.load.get(mentor.enrollment_id) or Load()


def prepare_run(pool: Pool, options: dict[str, Any]) -> RunInputs:
    """The run's model: mentees without an open match against mentors with places left
    once their open proposals are counted too (so applying never overbooks)."""
    mentees = [p for p in pool.mentees if p.enrollment_id not in pool.open_mentees]
    if pool.format == "peer":  # peers with no place left sit this run out
        mentees = [
            p
            for p in mentees
            if pool.capacity.get(p.enrollment_id, 0)
            - _load(pool, p).active
            - _load(pool, p).proposed
            > 0
        ]
    mentors = [
        replace(
            m,
            capacity=pool.capacity[m.enrollment_id]
            - _load(pool, m).active
            - _load(pool, m).proposed,
        )
        for m in pool.mentors
    ]
    index = MentorIndex(pool.criteria, mentors)
    rows = {p.enrollment_id: i for i, p in enumerate(mentees)}
    pairs = [
        (rows[a], index.column[b])
        for a, mentors_before in pool.earlier.items()
        for b in mentors_before
        if a in rows and b in index.column
    ]
    pinned: list[tuple[int, int]] = []
    warnings: list[str] = []
    for kind in ("pinned", "forbidden"):
        for item in options.get(kind) or []:
            a = uuid.UUID(str(item["mentee_enrollment_id"]))
            b = uuid.UUID(str(item["mentor_enrollment_id"]))
            if a in rows and b in index.column:
                (pinned if kind == "pinned" else pairs).append((rows[a], index.column[b]))
            elif kind == "pinned":
                warnings.append(
                    f"pinned pair {a} -> {b} ignored: not an unmatched mentee and a mentor "
                    "with open places of this program"
                )
    model = ScoringModel(index, mentees, pairs)
    if pool.format == "peer" and pinned:
        warnings.append("pinned pairs are ignored in peer runs")
        pinned = []
    run_options = RunOptions(
        objective=options.get("objective", "max_score"),
        min_score=options.get("min_score"),
        one_mentee_per_department=bool(options.get("one_mentee_per_department")),
        candidates_per_mentee=int(options.get("candidates_per_mentee", 50)),
        pinned=tuple(pinned),
    )
    return RunInputs(pool, model, run_options, warnings)


async def load_run_inputs(session: AsyncSession, run: MatchingRun) -> RunInputs:
    """Read the pool fresh (not from the cache: a run records exactly what it saw)."""
    program = await get_program(session, run.org_id, run.program_id)
    pool = await load_pool(session, run.org_id, program)
    return prepare_run(pool, run.options)


def run_result(inputs: RunInputs, plan: Plan) -> dict[str, Any]:
    """A plan as the run row stores it."""
    mentees, mentors = inputs.model.mentees, inputs.model.index.mentors
    return {
        "total_score": round(plan.total_score, 6),
        "matched_count": len(plan.proposals),
        "proposals": [
            {
                "mentee_enrollment_id": str(mentees[p.mentee].enrollment_id),
                "mentor_enrollment_id": str(mentors[p.mentor].enrollment_id),
                "mentee_external_id": mentees[p.mentee].external_id,
                "mentor_external_id": mentors[p.mentor].external_id,
                "score": round(p.explanation.score, 6),
                "pinned": p.pinned,
                "breakdown": breakdown_rows(p.explanation),
                "reasons": list(p.explanation.reasons),
            }
            for p in plan.proposals
        ],
        "unmatched": [
            {"mentee_enrollment_id": str(mentees[i].enrollment_id), "reason": reason}
            for i, reason in plan.unmatched
        ],
        "warnings": inputs.warnings + plan.warnings,
        "timings": {k: round(v, 4) for k, v in plan.timings.items()},
        "inputs_version": inputs.pool.inputs_version(),
    }


@dataclass(frozen=True)
class Applied:
    """What applying a run did."""

    created: list[dict[str, Any]]  # the new matches' columns
    skipped: list[dict[str, str]]


# A run's proposals as applying needs them, in stored order: read in the database, so the
# breakdowns and reasons of tens of thousands of proposals are never decoded.
_PROPOSALS = """
    SELECT (p ->> 'mentee_enrollment_id')::uuid, (p ->> 'mentor_enrollment_id')::uuid,
           (p ->> 'score')::float8
    FROM matching_run AS r
         CROSS JOIN LATERAL jsonb_array_elements(r.proposals) WITH ORDINALITY AS e (p, n)
    WHERE r.id = $1
    ORDER BY e.n
"""
# New matches (`_new_match` columns) in one statement, each column one array parameter
# (binary UUIDs and numbers; the JSON columns as text).
_MATCH_COLUMNS = {
    "id": "uuid", "org_id": "uuid", "program_id": "uuid", "mentee_enrollment_id": "uuid",
    "mentor_enrollment_id": "uuid", "mentee_person_id": "uuid", "mentor_person_id": "uuid",
    "mentee_external_id": "text", "mentor_external_id": "text", "status": "text",
    "score": "float8", "breakdown": "jsonb", "reasons": "jsonb", "run_id": "uuid",
    "group_id": "uuid", "peer": "boolean",
    "version": "integer", "created_at": "timestamptz", "updated_at": "timestamptz",
}  # fmt: skip
_MATCH_VALUES = ", ".join(
    f"r.{c}::jsonb" if t == "jsonb" else f"r.{c}" for c, t in _MATCH_COLUMNS.items()
)
_MATCH_ARRAYS = ", ".join(
    f"${k}::{'text' if t == 'jsonb' else t}[]" for k, t in enumerate(_MATCH_COLUMNS.values(), 1)
)
_INSERT_MATCHES = f"""
    INSERT INTO match ({", ".join(_MATCH_COLUMNS)})
    SELECT {_MATCH_VALUES}
    FROM unnest({_MATCH_ARRAYS}) AS r ({", ".join(_MATCH_COLUMNS)})
"""


def _match_arrays(matches: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """`_INSERT_MATCHES`' parameters: one list per column."""
    return [
        [to_json(m[c]).decode() for m in matches] if t == "jsonb" else [m[c] for m in matches]
        for c, t in _MATCH_COLUMNS.items()
    ]


async def _lock_run(session: AsyncSession, org_id: uuid.UUID, run_id: uuid.UUID) -> MatchingRun:
    """A run of the organization, row-locked and read fresh; its (large) proposals and
    unmatched lists are left unloaded."""
    run = await session.scalar(
        select(MatchingRun)
        .where(MatchingRun.id == run_id, MatchingRun.org_id == org_id)
        .options(defer(MatchingRun.proposals), defer(MatchingRun.unmatched))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if run is None:
        raise NotFound(f"matching run {run_id} not found")
    return run


async def apply_run(session: AsyncSession, org_id: uuid.UUID, run_id: uuid.UUID) -> Applied:
    """Turn a run's proposals into proposed matches, re-checking every rule and place now:
    whatever changed since the run (a withdrawal, a new match) wins over the proposal.

    A run may propose tens of thousands of matches: the proposals are read, the
    participants locked and the loads counted with one statement each; the matches and
    their events are inserted in batches of `APPLY_BATCH`, one statement per table."""
    run = await _lock_run(session, org_id, run_id)
    if run.status != "succeeded":
        raise Conflict(f"matching run {run_id} is {run.status}; only a succeeded run applies")
    if run.applied_at is not None:
        raise Conflict(f"matching run {run_id} was applied already")
    # Tens of thousands of rows read and dicts made, no cycles among them (see memory.py).
    with collector_paused():
        conn = await driver(session)
        proposals: list[tuple[uuid.UUID, uuid.UUID, float]] = list(
            await conn.fetch(_PROPOSALS, run.id)
        )
        mentor_ids = {mentor_id for _, mentor_id, _ in proposals}
        mentee_ids = {mentee_id for mentee_id, _, _ in proposals}
        await lock_participants(session, org_id, mentor_ids | mentee_ids)
        program = await get_program(session, org_id, run.program_id)
        # Read after the locks, so this is the current state (the cache checks its revision).
        pool = await POOLS.get(session, org_id, program)
        peer = pool.format == "peer"
        loads = await mentor_loads(session, mentor_ids | (mentee_ids if peer else set()), peer=peer)
        skipped: list[dict[str, str]] = []
        new_matches = _new_matches(pool, loads, proposals, org_id, run, skipped)
        created = await _insert_in_batches(session, org_id, new_matches)
    run.applied_at = utcnow()
    run.applied = {"created": len(created), "skipped": len(skipped)}
    await bump_revision(session, {run.program_id})
    return Applied(created, skipped)


APPLY_BATCH = 2_000  # new matches per insert


async def _insert_in_batches(
    session: AsyncSession, org_id: uuid.UUID, new_matches: Iterator[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Insert new matches and stage their `match.created` events, `APPLY_BATCH` at a time.

    Making the matches (checking and explaining the proposals) is CPU work, inserting them
    database work: a thread prepares the next batch while the database inserts the last."""
    conn = await driver(session)

    def next_batch() -> _Batch | None:
        batch = list(itertools.islice(new_matches, APPLY_BATCH))
        if not batch:
            return None
        return _Batch(batch, _match_arrays(batch), publish.created_outbox(org_id, batch))

    created: list[dict[str, Any]] = []
    ahead = asyncio.ensure_future(asyncio.to_thread(next_batch))
    try:
        while (batch := await ahead) is not None:
            ahead = asyncio.ensure_future(asyncio.to_thread(next_batch))
            await conn.execute(_INSERT_MATCHES, *batch.arrays)
            await publish.stage_outbox(session, batch.outbox)
            created += batch.matches
    finally:
        ahead.cancel()  # on an error: the batch being prepared is dropped
    return created


@dataclass(frozen=True)
class _Batch:
    """New matches, ready to insert: their columns' arrays and their events' outbox rows."""

    matches: list[dict[str, Any]]
    arrays: list[list[Any]]
    outbox: str


def _new_matches(
    pool: Pool,
    loads: dict[uuid.UUID, Load],
    proposals: Sequence[tuple[uuid.UUID, uuid.UUID, float]],
    org_id: uuid.UUID,
    run: MatchingRun,
    skipped: list[dict[str, str]],
) -> Iterator[dict[str, Any]]:
    """The new matches' columns, best score first: each proposal re-checked against the
    pool and the mentors' loads as they are now (`loads` counts the new matches in as they
    are made); the proposals that no longer fit go to `skipped`, with why."""
    open_mentees = set(pool.open_mentees)
    mentor_rows = {m.enrollment_id: m for m in pool.mentors}
    peer = pool.format == "peer"

    def full(who: uuid.UUID) -> bool:
        return loads[who].active + loads[who].proposed >= pool.capacity.get(who, 0)

    for mentee_id, mentor_id, _ in sorted(proposals, key=lambda p: -p[2]):
        mentee, mentor = pool.mentee(mentee_id), mentor_rows.get(mentor_id)
        reason = None
        if mentee is None:
            reason = "the mentee is no longer in the program's pool"
        elif mentor is None:
            reason = "the mentor is no longer in the program's pool"
        elif mentee_id in open_mentees:
            reason = "the mentee has an open match already"
        elif mentor_id in pool.earlier.get(mentee_id, ()):
            reason = "this mentee and mentor were matched before"
        elif broken := hard_rule_violations(pool.criteria, mentee, mentor):
            reason = f"the pair now breaks hard rules: {', '.join(broken)}"
        elif full(mentor_id):
            reason = "the mentor has no open place any more"
        elif peer and full(mentee_id):
            reason = "the peer has no open place any more"
        if reason is not None or mentee is None or mentor is None:
            skipped.append(
                {
                    "mentee_enrollment_id": str(mentee_id),
                    "mentor_enrollment_id": str(mentor_id),
                    "reason": reason or "",
                }
            )
            continue
        explanation = pair_explanation(pool, mentee, mentor)
        loads[mentor_id].proposed += 1
        if peer:
            loads[mentee_id].proposed += 1
        else:
            open_mentees.add(mentee_id)
        yield new_match(org_id, run.program_id, mentee, mentor, explanation, run.id, pool.format)
