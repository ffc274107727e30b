"""Runs are bounded per program and scheduled fairly across organizations."""

import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.matching import projection, runs
from services.matching.models import MatchingRun
from services.matching.runner import RunWorker
from shared.db import utcnow
from shared.errors import Conflict
from tests.matching.conftest import Connect, Feed, Org
from tests.matching.factories import program_event


def _run(org_id: uuid.UUID, program_id: uuid.UUID, minute: int) -> MatchingRun:
    now = utcnow()
    return MatchingRun(
        id=uuid.uuid4(),
        org_id=org_id,
        program_id=program_id,
        status="pending",
        objective="max_score",
        options={},
        created_at=now.replace(microsecond=0).replace(second=minute % 60),
        updated_at=now,
    )


async def test_claims_take_turns_across_organizations(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Organization A queues three runs before B queues one: B's run is computed second,
    not fourth (one FIFO for all tenants would put it last)."""
    a, b = uuid.uuid4(), uuid.uuid4()
    queued = [_run(a, uuid.uuid4(), k) for k in range(3)] + [_run(b, uuid.uuid4(), 10)]
    async with sessions() as s, s.begin():
        s.add_all(queued)
    worker = RunWorker(sessions)
    first = await worker.claim()
    second = await worker.claim()
    assert first == queued[0].id
    assert second == queued[3].id  # B's, while A's first is still running
    async with sessions() as s, s.begin():  # both finish
        for run_id in (first, second):
            run = await s.get(MatchingRun, run_id)
            assert run is not None
            run.status = "succeeded"
    assert await worker.claim() == queued[1].id
    assert await worker.claim() == queued[2].id


async def test_a_program_has_a_bounded_number_of_open_runs(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org = uuid.uuid4()
    program = program_event()
    async with sessions() as s, s.begin():
        await projection.apply_program(s, org, program)
        for _ in range(2):
            await runs.create_run(s, org, program.program_id, {}, max_open=2)
    async with sessions() as s, s.begin():
        with pytest.raises(Conflict, match="at most 2"):
            await runs.create_run(s, org, program.program_id, {}, max_open=2)
    # Another program of the same organization is not affected.
    other = program_event()
    async with sessions() as s, s.begin():
        await projection.apply_program(s, org, other)
        await runs.create_run(s, org, other.program_id, {}, max_open=2)


async def test_open_run_limit_and_body_caps_through_the_gateway(
    api: httpx.AsyncClient, org: Org, feed: Feed, service_db: Connect
) -> None:
    org_id, key = org
    program = program_event()
    await feed.send(org_id, program)
    base = f"/v1/programs/{program.program_id}/matching-runs"
    # Two runs computing (as far as the queue can tell: a fresh heartbeat far ahead).
    conn = await service_db("matching")
    try:
        for _ in range(2):
            await conn.execute(
                "INSERT INTO matching_run (id, org_id, program_id, status, objective, "
                "heartbeat_at) VALUES ($1, $2, $3, 'running', 'max_score', "
                "now() + interval '1 hour')",
                uuid.uuid4(),
                uuid.UUID(org_id),
                program.program_id,
            )
        refused = await api.post(base, json={}, headers=key)
        assert refused.status_code == 409, refused.text
        assert "at most 2" in refused.json()["detail"]
    finally:
        await conn.execute("DELETE FROM matching_run WHERE program_id = $1", program.program_id)
        await conn.close()

    pair = {"mentee_enrollment_id": str(uuid.uuid4()), "mentor_enrollment_id": str(uuid.uuid4())}
    too_many = await api.post(base, json={"forbidden": [pair] * 2001}, headers=key)
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "forbidden"
    too_wide = await api.post(base, json={"candidates_per_mentee": 1000}, headers=key)
    assert too_wide.status_code == 422
    assert too_wide.json()["errors"][0]["field"] == "candidates_per_mentee"
