"""Matching's use cases on a real (throwaway) PostgreSQL database, without the broker:
the projection's version guard, leaving the pool, and runs that resume after a stop."""

import json
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.matching import domain, lifecycle, projection, publish, runs
from services.matching.embeddings import DIMENSIONS, pack
from services.matching.models import (
    EnrollmentProjection,
    Match,
    MatchingRun,
    PersonProjection,
    ProgramProjection,
)
from services.matching.pool import EnrollmentRecord, PersonRecord, load_pool
from services.matching.runner import RunWorker
from shared.db import make_engine, make_sessionmaker, migrate, utcnow
from shared.errors import Conflict
from shared.events import (
    EnrollmentUpdatedV1,
    MatchCreatedV1,
    PersonDeactivatedV1,
    ProgramUpdatedV1,
    make_event,
    parse_event,
)
from shared.outbox import OutboxMessage
from tests.matching.factories import enrollment_event, person_event, program_event

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "matching" / "migrations"


@pytest.fixture
async def sessions(scratch_db: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a database with matching's schema."""
    await migrate(scratch_db, MIGRATIONS)
    engine = make_engine(scratch_db, pool_size=4)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_projection_keeps_the_newest_version(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org = uuid.uuid4()
    program = program_event(version=2, max_mentees_per_mentor=3)
    ada = person_event("ada")
    enrolled = enrollment_event(program.program_id, ada, "mentor", skills={"Go": 4}, version=2)
    async with sessions() as s, s.begin():
        assert await projection.apply_program(s, org, program)
        assert await projection.apply_person(s, org, ada)
        assert await projection.apply_enrollment(s, org, enrolled)
    async with sessions() as s, s.begin():
        stale = ProgramUpdatedV1(**{**program.model_dump(), "version": 1, "status": "closed"})
        assert not await projection.apply_program(s, org, stale)
        older = EnrollmentUpdatedV1(**{**enrolled.model_dump(), "version": 1, "capacity": 9})
        assert not await projection.apply_enrollment(s, org, older)
    async with sessions() as s:
        pool = await domain.current_pool(s, org, program.program_id)
        assert pool.program_status == "open"
        assert [m.external_id for m in pool.mentors] == ["ada"]
        assert pool.capacity[enrolled.enrollment_id] == 3
        assert pool.mentors[0].skills == {"go": 4}


async def test_deactivation_and_withdrawal_leave_the_pool_and_end_matches(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org = uuid.uuid4()
    program = program_event()
    mentee_p, mentor_p, other_p = person_event("e1"), person_event("m1"), person_event("m2")
    mentee = enrollment_event(program.program_id, mentee_p, "mentee", goals=["python"])
    mentor = enrollment_event(program.program_id, mentor_p, "mentor", skills={"python": 5})
    other = enrollment_event(program.program_id, other_p, "mentor", skills={"python": 1})
    async with sessions() as s, s.begin():
        await projection.apply_program(s, org, program)
        for p in (mentee_p, mentor_p, other_p):
            await projection.apply_person(s, org, p)
        for e in (mentee, mentor, other):
            await projection.apply_enrollment(s, org, e)
    async with sessions() as s, s.begin():
        found = await domain.suggestions(s, org, program.program_id, mentee.enrollment_id, 5)
        assert [x.other.external_id for x in found] == ["m1", "m2"]
        match = await lifecycle.create_match(
            s, org, program.program_id, mentee.enrollment_id, mentor.enrollment_id
        )
    async with sessions() as s, s.begin():
        gone = PersonDeactivatedV1(
            **{**mentor_p.model_dump(), "version": 2, "employment_status": "inactive"}
        )
        await projection.apply_person(s, org, gone)
    async with sessions() as s, s.begin():
        found = await domain.suggestions(s, org, program.program_id, mentee.enrollment_id, 5)
        assert [x.other.external_id for x in found] == ["m2"]
        declined = await s.get(Match, match.id)
        assert declined is not None and declined.status == "declined"
        assert declined.end_reason == "the person left the organization"
        types = (
            await s.scalars(
                select(OutboxMessage.event_type)
                .where(OutboxMessage.key == str(match.id))
                .order_by(OutboxMessage.id)
            )
        ).all()
        assert types == ["mentorbus.match.created.v1", "mentorbus.match.declined.v1"]
        withdrawn = EnrollmentUpdatedV1(**{**other.model_dump(), "version": 2})
        await projection.apply_enrollment(s, org, withdrawn, withdrawn=True)
    async with sessions() as s:
        assert await domain.suggestions(s, org, program.program_id, mentee.enrollment_id, 5) == []
        row = await s.get(EnrollmentProjection, other.enrollment_id)
        assert row is not None and row.status == "withdrawn"


async def test_a_run_left_running_by_a_stopped_worker_is_resumed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org = uuid.uuid4()
    program = program_event(max_mentees_per_mentor=1)
    people = [person_event(f"p{i}") for i in range(5)]
    mentees = [enrollment_event(program.program_id, p, "mentee", goals=["sql"]) for p in people[:3]]
    mentors = [
        enrollment_event(program.program_id, p, "mentor", skills={"SQL": 5}) for p in people[3:]
    ]
    async with sessions() as s, s.begin():
        await projection.apply_program(s, org, program)
        for p in people:
            await projection.apply_person(s, org, p)
        for e in mentees + mentors:
            await projection.apply_enrollment(s, org, e)
        run = await runs.create_run(s, org, program.program_id, {"objective": "max_score"})
        # As a worker that died mid-run leaves it: running, with an old heartbeat.
        run.status, run.attempts, run.heartbeat_at = "running", 1, utcnow() - timedelta(minutes=1)
    worker = RunWorker(sessions, stale_seconds=5)
    assert await worker.claim() == run.id
    assert await worker.claim() is None  # claimed: nobody else takes it
    await worker.execute(run.id)
    async with sessions() as s:
        done = await s.get(MatchingRun, run.id)
        assert done is not None and done.status == "succeeded", done and done.error
        assert done.attempts == 2 and done.matched_count == 2 and done.progress == 1.0
        assert done.proposals is not None and done.unmatched is not None
        assert len(done.unmatched) == 1
        assert "places went to" in done.unmatched[0]["reason"]
        assert done.inputs_version is not None
        assert done.inputs_version["program_version"] == 1
        assert done.inputs_version["digest"].startswith("sha256:")


async def test_a_goal_in_other_words_finds_the_mentor_who_knows_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org = uuid.uuid4()
    program = program_event()
    mentee_p, guard_p, seller_p = person_event("e"), person_event("m1"), person_event("m2")
    pid = program.program_id
    mentee = enrollment_event(pid, mentee_p, "mentee", goals=["protect our apps from attackers"])
    guard = enrollment_event(pid, guard_p, "mentor", skills={"Security": 4})
    seller = enrollment_event(pid, seller_p, "mentor", skills={"Sales": 5})
    async with sessions() as s, s.begin():
        await projection.apply_program(s, org, program)
        for p in (mentee_p, guard_p, seller_p):
            await projection.apply_person(s, org, p)
        for e in (mentee, guard, seller):
            await projection.apply_enrollment(s, org, e)
    async with sessions() as s:
        row = await s.get(EnrollmentProjection, mentee.enrollment_id)
        assert row is not None and row.goal_vectors is not None  # embedded on arrival
        found = await domain.suggestions(s, org, pid, mentee.enrollment_id, 5)
    assert [x.other.external_id for x in found] == ["m1", "m2"]
    assert "shares 1 of 1 goal skills: security" in found[0].explanation.reasons


async def test_the_pool_reads_every_column_as_the_projection_holds_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The pool's bulk read (plain SQL, JSON decoded in one pass) gives the same records as
    the ORM, odd values included; withdrawn enrollments stay out, managers come in."""
    org, program_id = uuid.uuid4(), uuid.uuid4()
    boss, ada, bob = (
        PersonProjection(id=uuid.uuid4(), org_id=org, external_id=x, employment_status="active")
        for x in ("boss", "ada", "bob")
    )
    boss.version, boss.attributes, boss.languages = 3, {}, ["en"]
    ada.version, ada.manager_external_id, ada.division, ada.title = 1, "boss", "R&D", "Lead"
    ada.attributes = {"location": "Paris", "nested": {"list": [1, 2.5, None, "é"]}}
    ada.languages, ada.time_zone, ada.hire_date = ["en-GB", "fr"], "Europe/Paris", date(2015, 3, 1)
    bob.version, bob.manager_external_id, bob.attributes, bob.languages = 2, "ada", {}, []
    vectors = pack(np.ones((1, DIMENSIONS), dtype=np.float32))

    def enroll(person: PersonProjection, role: str, **values: Any) -> EnrollmentProjection:
        return EnrollmentProjection(
            id=uuid.uuid4(),
            org_id=org,
            program_id=program_id,
            person_id=person.id,
            employee_external_id=person.external_id,
            version=1,
            role=role,
            status=values.pop("status", "active"),
            **values,
        )

    mentor = enroll(
        ada,
        "mentor",
        skills=[{"name": "SQL", "level": "4"}, "junk", {"level": 2}, {"name": "Go"}],
        goals=[],
        languages=["de"],
        capacity=None,
    )
    mentee = enroll(bob, "mentee", skills=[], goals=["sql"], languages=[], goal_vectors=vectors)
    left = enroll(boss, "mentee", skills=[], goals=["go"], languages=[], status="withdrawn")
    earlier = Match(
        org_id=org,
        program_id=program_id,
        mentee_enrollment_id=mentee.id,
        mentor_enrollment_id=mentor.id,
        status="ended",
    )
    async with sessions() as s, s.begin():
        s.add(
            ProgramProjection(
                id=program_id,
                org_id=org,
                version=1,
                name="P",
                format="one_to_one",
                status="open",
                max_mentees_per_mentor=2,
                criteria={},
            )
        )
        s.add_all([boss, ada, bob, mentor, mentee, left, earlier])
    async with sessions() as s:
        program = await s.get(ProgramProjection, program_id)
        assert program is not None
        pool = await load_pool(s, org, program)
        people = {p.external_id: p for p in await s.scalars(select(PersonProjection))}
        enrollments = {e.id: e for e in await s.scalars(select(EnrollmentProjection))}
    assert set(pool.people) == {"boss", "ada", "bob"}  # boss: up bob's manager chain
    for external_id, record in pool.people.items():
        row = people[external_id]
        for name in PersonRecord.__dataclass_fields__:
            assert getattr(record, name) == getattr(row, name), name
    assert set(pool.enrollments) == {mentor.id, mentee.id}
    for enrollment_id, found in pool.enrollments.items():
        expected = enrollments[enrollment_id]
        for name in EnrollmentRecord.__dataclass_fields__:
            assert getattr(found, name) == getattr(expected, name), name
    assert pool.earlier == {mentee.id: {mentor.id}}
    assert pool.mentors[0].skills == {"sql": 4, "go": 1}
    assert pool.mentors[0].managers == frozenset({"boss"})
    assert pool.mentees[0].managers == frozenset({"ada", "boss"})
    assert pool.mentees[0].goals == ("sql",)


async def test_applying_a_run_rechecks_places_and_announces_each_match(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the run and its apply a mentor's place is taken and a mentee withdraws: the
    apply skips what no longer fits, never overbooks, and stages one `match.created` per
    new match, exactly as `make_event` builds it; a second apply is refused."""
    monkeypatch.setattr(runs, "APPLY_BATCH", 2)  # several insert batches
    org = uuid.uuid4()
    program = program_event(max_mentees_per_mentor=2)
    pid = program.program_id
    people = [person_event(f"apply-e{i}") for i in range(7)]
    people += [person_event(f"apply-m{i}") for i in range(3)]
    mentees = [enrollment_event(pid, p, "mentee", goals=["python"]) for p in people[:6]]
    late = enrollment_event(pid, people[6], "mentee", goals=["python"])
    mentors = [
        enrollment_event(pid, p, "mentor", skills={"Python": 5 - i})
        for i, p in enumerate(people[7:])
    ]
    async with sessions() as s, s.begin():
        await projection.apply_program(s, org, program)
        for p in people:
            await projection.apply_person(s, org, p)
        for e in mentees + mentors:
            await projection.apply_enrollment(s, org, e)
        run = await runs.create_run(s, org, pid, {"objective": "max_score"})
    worker = RunWorker(sessions)
    assert await worker.claim() == run.id
    await worker.execute(run.id)
    async with sessions() as s:
        done = await s.get(MatchingRun, run.id)
        assert done is not None and done.proposals is not None
        proposals = done.proposals
    assert len(proposals) == 6  # three mentors with two places each
    first = mentors[0].enrollment_id
    # A mentee proposed to another mentor withdraws.
    gone = next(
        uuid.UUID(p["mentee_enrollment_id"])
        for p in proposals
        if p["mentor_enrollment_id"] != str(first)
    )
    leaving = next(e for e in mentees if e.enrollment_id == gone)
    async with sessions() as s, s.begin():
        await projection.apply_enrollment(s, org, late)
        await lifecycle.create_match(s, org, pid, late.enrollment_id, first)
        withdrawn = EnrollmentUpdatedV1(**{**leaving.model_dump(), "version": 2})
        await projection.apply_enrollment(s, org, withdrawn, withdrawn=True)

    async with sessions() as s, s.begin():
        applied = await runs.apply_run(s, org, run.id)
    reasons = {s["mentee_enrollment_id"]: s["reason"] for s in applied.skipped}
    assert reasons[str(gone)] == "the mentee is no longer in the program's pool"
    full = [r for r in reasons.values() if r == "the mentor has no open place any more"]
    assert len(full) == 1 and len(applied.skipped) == 2 and len(applied.created) == 4

    async with sessions() as s:
        stored = {m.id: m for m in await s.scalars(select(Match).where(Match.run_id == run.id))}
        open_per_mentor: dict[uuid.UUID, int] = {}
        for m in await s.scalars(select(Match).where(Match.status.in_(("proposed", "active")))):
            if m.program_id == pid:
                open_per_mentor[m.mentor_enrollment_id] = (
                    open_per_mentor.get(m.mentor_enrollment_id, 0) + 1
                )
        payloads = {
            row.key: row.payload
            for row in await s.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.key.in_([str(i) for i in stored]),
                    OutboxMessage.event_type == "mentorbus.match.created.v1",
                )
            )
        }
    assert all(n <= 2 for n in open_per_mentor.values())  # never overbooked
    assert open_per_mentor[first] == 2
    assert [m["id"] for m in applied.created] == list(stored)  # inserted in score order
    assert len(payloads) == len(stored)
    for created in applied.created:
        match = stored[created["id"]]
        for column, value in created.items():
            assert getattr(match, column) == value, column  # as made, after the round trip
        envelope, data = parse_event(json.dumps(payloads[str(match.id)]))
        assert data == publish.match_state(match, MatchCreatedV1)
        reference = make_event(data, source=publish.SOURCE, orgid=str(org))
        assert envelope == reference.model_copy(update={"id": envelope.id, "time": envelope.time})

    async with sessions() as s, s.begin():
        with pytest.raises(Conflict, match="was applied already"):
            await runs.apply_run(s, org, run.id)
