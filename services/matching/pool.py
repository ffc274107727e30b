"""A program's candidate pool, read from the projection: who may mentor (with how many open
places), who wants a mentor, earlier pairs, and the scoring index over the mentors.

Loading a large program takes a while, so pools are cached per process and reused while
the program's and its organization's `pool_revision` (bumped by every change that can alter
the pool) are unchanged.
"""

import hashlib
import json
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.matching.criteria import Criteria, Participant, preference_targets
from services.matching.embeddings import EMBEDDER, Vectors, closest_skills, unpack
from services.matching.memory import collector_paused
from services.matching.models import (
    OPEN_STATUSES,
    PersonProjection,
    PoolRevision,
    ProgramProjection,
)
from services.matching.scoring import MentorIndex
from services.matching.skills import goal_skills, normalize_skills
from shared.db import driver_connection

MENTOR_ROLES = ("mentor", "both")
MENTEE_ROLES = ("mentee", "both")
# Deeper manager chains than this are cut: no real org chart is this deep (or it loops).
MAX_CHAIN = 32


@lru_cache(maxsize=1024)
def _utc_offset(zone: str, day: date) -> float | None:
    # `day` is only part of the cache key, so a cached offset expires when the date changes.
    del day
    try:
        offset = datetime.now(ZoneInfo(zone)).utcoffset()
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return offset.total_seconds() / 3600.0 if offset is not None else None


def utc_offset(zone: str | None) -> float | None:
    """Hours from UTC of an IANA zone today (cached per day: offsets move with DST)."""
    return _utc_offset(zone, datetime.now(UTC).date()) if zone else None


def primary_language(tag: str) -> str:
    """ "en-GB" and "en" are one language for talking to each other."""
    return tag.split("-")[0].strip().casefold()


def mentor_capacity(program: ProgramProjection, own: int | None) -> int:
    """A mentor's places: their own number, never above the program's maximum."""
    most = program.max_mentees_per_mentor
    return max(0, min(own if own is not None else most, most))


# Pools read tens of thousands of rows: plain records, not ORM objects, keep that fast.
@dataclass(frozen=True, slots=True)
class PersonRecord:
    """A person of the projection, as a pool reads it."""

    id: uuid.UUID
    external_id: str
    department: str | None
    division: str | None
    title: str | None
    time_zone: str | None
    languages: list[str]
    manager_external_id: str | None
    hire_date: date | None
    employment_status: str
    attributes: dict[str, Any]
    version: int


@dataclass(frozen=True, slots=True)
class EnrollmentRecord:
    """An enrollment of the projection, as a pool reads it."""

    id: uuid.UUID
    person_id: uuid.UUID
    employee_external_id: str
    version: int
    role: str
    skills: list[dict[str, Any]]
    goals: list[str]
    languages: list[str]
    capacity: int | None
    status: str
    goal_vectors: bytes | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    preferences: dict[str, Any] = field(default_factory=dict)


@dataclass
class Load:
    """A mentor's open matches."""

    active: int = 0
    proposed: int = 0


@dataclass
class Pool:
    """Everything scoring needs about one program, as of `revision`."""

    program_id: uuid.UUID
    program_version: int
    program_status: str
    format: str  # one_to_one | group | reverse | peer | flash
    criteria: Criteria
    revision: tuple[int, int]  # (program, organization's people): see bump_revision
    enrollments: dict[uuid.UUID, EnrollmentRecord]
    people: dict[str, PersonRecord]  # by external id
    mentors: list[Participant]  # capacity = places left after active matches
    mentees: list[Participant]
    capacity: dict[uuid.UUID, int]  # mentor enrollment -> places in total
    load: dict[uuid.UUID, Load]
    open_mentees: set[uuid.UUID]
    # mentee enrollment -> mentors never to propose to them again: open, declined and ended
    # pairs, and completed ones unless the program prefers previous mentors (never in
    # flash programs). Peers: both directions.
    earlier: dict[uuid.UUID, set[uuid.UUID]]
    digest: str
    _index: MentorIndex | None = field(default=None, repr=False)
    _mentee_rows: dict[uuid.UUID, int] | None = field(default=None, repr=False)

    @property
    def index(self) -> MentorIndex:
        """The scoring index over the mentors with places left (built once per pool)."""
        if self._index is None:
            self._index = MentorIndex(self.criteria, self.mentors)
        return self._index

    def mentee(self, enrollment_id: uuid.UUID) -> Participant | None:
        """A mentee of the pool by enrollment."""
        if self._mentee_rows is None:
            self._mentee_rows = {p.enrollment_id: i for i, p in enumerate(self.mentees)}
        row = self._mentee_rows.get(enrollment_id)
        return None if row is None else self.mentees[row]

    def inputs_version(self) -> dict[str, Any]:
        """What a run was computed from: enough to tell whether its inputs changed since."""
        return {
            "program_version": self.program_version,
            "pool_revision": list(self.revision),
            "mentors": len(self.mentors),
            "mentees": len(self.mentees),
            "digest": self.digest,
        }


def eligible(person: PersonRecord | PersonProjection | None) -> bool:
    """Only people at work take part; an enrollment whose person matching has not heard of
    yet is allowed (events of different topics arrive in any order)."""
    return person is None or person.employment_status == "active"


def participant(
    enrollment: EnrollmentRecord,
    person: PersonRecord | None,
    managers: frozenset[str],
    goals: tuple[str, ...],
    today: date,
    capacity: int = 0,
    skills: dict[str, int] | None = None,
) -> Participant:
    """The scoring view of an enrollment and its person (goals already read as skills;
    `skills` normalized already, if the caller has them)."""
    languages = enrollment.languages or (person.languages if person else []) or []
    hire = person.hire_date if person else None
    attributes: dict[str, Any] = {}
    if person is not None:
        attributes = {"division": person.division, "title": person.title, **person.attributes}
    # Intake answers are criteria too, as `answers.<key>` (see Criteria.attribute_rules).
    attributes.update({f"answers.{k}": v for k, v in (enrollment.answers or {}).items()})
    return Participant(
        enrollment_id=enrollment.id,
        external_id=enrollment.employee_external_id,
        person_id=enrollment.person_id,
        skills=_skills(enrollment) if skills is None else skills,
        goals=goals,
        languages=frozenset(primary_language(t) for t in languages if t),
        utc_offset=utc_offset(person.time_zone if person else None),
        department=person.department if person else None,
        seniority=((today - hire).days / 365.25) if hire else None,
        managers=managers,
        attributes=attributes,
        capacity=capacity,
        preferences=preference_targets(enrollment.preferences),
    )


def _skills(enrollment: EnrollmentRecord) -> dict[str, int]:
    return normalize_skills(
        (str(s.get("name", "")), int(s.get("level", 1)))
        for s in enrollment.skills
        if isinstance(s, dict)
    )


async def driver(session: AsyncSession) -> Any:
    """The session's own asyncpg connection (same transaction), for bulk statements that
    skip SQLAlchemy's per-value processing. Pending ORM changes are flushed first, so plain
    SQL sees them as an ORM query (autoflush) would."""
    return await driver_connection(session)


def _json_values(texts: Iterable[str | None]) -> list[Any]:
    """JSON values read as text, decoded in one pass: one parse of a long array is much
    faster than tens of thousands of small ones."""
    values: list[Any] = json.loads("[" + ",".join("null" if t is None else t for t in texts) + "]")
    return values


# Columns in `PersonRecord` order; `attributes` as text, decoded in bulk.
_PEOPLE = """
    SELECT p.id, p.external_id, p.department, p.division, p.title, p.time_zone, p.languages,
           p.manager_external_id, p.hire_date, p.employment_status, p.attributes::text,
           p.version
    FROM person p JOIN unnest($2::text[]) AS wanted (external_id)
         ON p.external_id = wanted.external_id
    WHERE p.org_id = $1
"""


async def load_people(
    session: AsyncSession, org_id: uuid.UUID, external_ids: set[str]
) -> dict[str, PersonRecord]:
    """People by external id, with everyone up their manager chains."""
    conn = await driver(session)
    people: dict[str, PersonRecord] = {}
    wanted = set(external_ids)
    for _ in range(MAX_CHAIN):
        wanted -= people.keys()
        if not wanted:
            break
        rows = await conn.fetch(_PEOPLE, org_id, list(wanted))
        attributes = _json_values(row[10] for row in rows)
        found = {
            row[1]: PersonRecord(
                id=row[0],
                external_id=row[1],
                department=row[2],
                division=row[3],
                title=row[4],
                time_zone=row[5],
                languages=row[6],
                manager_external_id=row[7],
                hire_date=row[8],
                employment_status=row[9],
                attributes=attributes[k],
                version=row[11],
            )
            for k, row in enumerate(rows)
        }
        people.update(found)
        wanted = {p.manager_external_id for p in found.values() if p.manager_external_id}
    return people


def manager_chains(people: dict[str, PersonRecord]) -> dict[str, tuple[str, ...]]:
    """Everyone above each person, nearest first (cut at MAX_CHAIN and at a loop).

    Memoized: a chain is the manager plus the manager's chain, so an org of n people costs
    O(n) steps, not O(n x depth)."""
    chains: dict[str, tuple[str, ...]] = {}
    for start in people:
        path: list[str] = []
        node: str | None = start
        while node is not None and node not in chains and node not in path:
            path.append(node)
            person = people.get(node)
            node = person.manager_external_id if person else None
        tail = chains.get(node, ()) if node is not None else ()
        for member in reversed(path):
            person = people.get(member)
            boss = person.manager_external_id if person else None
            chain = ((boss, *tail) if boss else ())[:MAX_CHAIN]
            if member in chain:  # a loop: cut it where it comes back
                chain = chain[: chain.index(member)]
            chains[member] = chain
            tail = chain
    return chains


async def current_revision(
    session: AsyncSession, org_id: uuid.UUID, program_id: uuid.UUID
) -> tuple[int, int]:
    """The program's revision and its organization's people revision (0 before any change)."""
    result = await session.execute(
        select(PoolRevision.scope_id, PoolRevision.revision).where(
            PoolRevision.scope_id.in_([program_id, org_id])
        )
    )
    rows = {scope: revision for scope, revision in result}
    return int(rows.get(program_id, 0)), int(rows.get(org_id, 0))


async def bump_revision(session: AsyncSession, scopes: set[uuid.UUID]) -> None:
    """Mark pools changed: a program's (its enrollments or matches changed) or every pool of
    an organization (one of its people changed: their own data or someone's manager chain).
    In id order, so concurrent bumps never deadlock."""
    for scope_id in sorted(scopes):
        statement = insert(PoolRevision).values(scope_id=scope_id, revision=1)
        statement = statement.on_conflict_do_update(
            index_elements=[PoolRevision.scope_id],
            set_={"revision": PoolRevision.revision + 1},
        )
        await session.execute(statement)


# Columns in `EnrollmentRecord` order; `skills` as text, decoded in bulk.
_ENROLLMENTS = """
    SELECT id, person_id, employee_external_id, version, role, skills::text, goals, languages,
           capacity, status, goal_vectors, answers::text, preferences::text
    FROM enrollment
    WHERE org_id = $1 AND program_id = $2 AND status = 'active'
"""
_MATCHES = """
    SELECT id, version, mentee_enrollment_id, mentor_enrollment_id, status
    FROM match
    WHERE org_id = $1 AND program_id = $2
"""


async def load_enrollments(
    session: AsyncSession, org_id: uuid.UUID, program_id: uuid.UUID
) -> list[EnrollmentRecord]:
    """A program's active enrollments."""
    rows = await (await driver(session)).fetch(_ENROLLMENTS, org_id, program_id)
    skills = _json_values(row[5] for row in rows)
    answers = _json_values(row[11] for row in rows)
    preferences = _json_values(row[12] for row in rows)
    return [
        EnrollmentRecord(
            id=row[0],
            person_id=row[1],
            employee_external_id=row[2],
            version=row[3],
            role=row[4],
            skills=skills[k],
            goals=row[6],
            languages=row[7],
            capacity=row[8],
            status=row[9],
            goal_vectors=row[10],
            answers=answers[k] or {},
            preferences=preferences[k] or {},
        )
        for k, row in enumerate(rows)
    ]


async def load_pool(session: AsyncSession, org_id: uuid.UUID, program: ProgramProjection) -> Pool:
    """Read a program's pool from the projection.

    Tens of thousands of rows: read with plain asyncpg on the session's connection (same
    transaction) into plain records, since SQLAlchemy's per-value result processing and one
    JSON parse per row cost more than the queries themselves; and without the cyclic
    garbage collector walking them again and again meanwhile (see `collector_paused`)."""
    with collector_paused():
        revision = await current_revision(session, org_id, program.id)
        enrollments = await load_enrollments(session, org_id, program.id)
        external_ids = {e.employee_external_id for e in enrollments}
        people = await load_people(session, org_id, external_ids)
        rows = await (await driver(session)).fetch(_MATCHES, org_id, program.id)
        matches = [MatchRow(*row) for row in rows]
        return build_pool(program, revision, enrollments, people, matches)


@dataclass(frozen=True)
class MatchRow:
    """What a pool needs of a match."""

    id: uuid.UUID
    version: int
    mentee_enrollment_id: uuid.UUID
    mentor_enrollment_id: uuid.UUID
    status: str


def build_pool(
    program: ProgramProjection,
    revision: tuple[int, int],
    enrollments: list[EnrollmentRecord],
    people: dict[str, PersonRecord],
    matches: list[MatchRow],
) -> Pool:
    """A pool from projection rows (pure: the bench builds pools the same way)."""
    peer = program.format == "peer"
    criteria = Criteria.from_program(program.criteria, program.format)
    load: dict[uuid.UUID, Load] = {}
    open_mentees: set[uuid.UUID] = set()
    earlier: dict[uuid.UUID, set[uuid.UUID]] = {}
    previous: dict[uuid.UUID, set[uuid.UUID]] = {}
    again = criteria.weights.get("previous_mentor", 0.0) > 0 and program.format != "flash"
    for m in matches:
        pairs = [(m.mentee_enrollment_id, m.mentor_enrollment_id)]
        if peer:  # a peer pair is one pair whichever side each is on
            pairs.append((m.mentor_enrollment_id, m.mentee_enrollment_id))
        if m.status in OPEN_STATUSES:
            # A peer's places are taken by pairs on either side.
            for _, mentor in pairs:
                entry = load.setdefault(mentor, Load())
                if m.status == "active":
                    entry.active += 1
                else:
                    entry.proposed += 1
            if not peer:
                open_mentees.add(m.mentee_enrollment_id)
        if m.status == "completed":
            for mentee, mentor in pairs:
                previous.setdefault(mentee, set()).add(mentor)
            if again:
                continue
        for mentee, mentor in pairs:
            earlier.setdefault(mentee, set()).add(mentor)

    active = [e for e in enrollments if eligible(people.get(e.employee_external_id))]
    if peer:  # peers are the enrollments with role `both`
        active = [e for e in active if e.role == "both"]
    active.sort(key=lambda e: e.id.int)  # a stable order: ties break the same way each time
    skills = {e.id: _skills(e) for e in active}  # normalized once, shared (read-only)
    vocabulary: set[str] = set()
    for e in active:
        if e.role in MENTOR_ROLES:
            vocabulary.update(skills[e.id])
    chains = manager_chains(people)
    today = date.today()
    reader = _GoalReader(vocabulary)
    capacity: dict[uuid.UUID, int] = {}
    mentors, mentees = [], []
    for e in active:
        person = people.get(e.employee_external_id)
        chain = frozenset(chains.get(e.employee_external_id, ()))
        if e.role in MENTOR_ROLES:
            capacity[e.id] = mentor_capacity(program, e.capacity)
            places = capacity[e.id] - load.get(e.id, Load()).active
            mentors.append(participant(e, person, chain, (), today, places, skills[e.id]))
        if e.role in MENTEE_ROLES:
            goals = reader.read(e.goals, e.goal_vectors)
            seeker = participant(e, person, chain, goals, today, 0, skills[e.id])
            if e.id in previous:
                seeker = replace(seeker, previous=frozenset(previous[e.id]))
            mentees.append(seeker)

    # Order-independent content: sorting the short strings is cheap, unlike sorting UUIDs.
    parts = [f"e{e.id}:{e.version}" for e in enrollments]
    parts += [f"p{p.id}:{p.version}:{p.employment_status}" for p in people.values()]
    parts += [f"m{m.id}:{m.version}" for m in matches]
    parts.sort()
    parts.append(f"g{program.version}")
    digest = hashlib.sha256(";".join(parts).encode())
    return Pool(
        program_id=program.id,
        program_version=program.version,
        program_status=program.status,
        format=program.format,
        criteria=criteria,
        revision=revision,
        enrollments={e.id: e for e in enrollments},
        people=people,
        mentors=mentors,
        mentees=mentees,
        capacity=capacity,
        load=load,
        open_mentees=open_mentees,
        earlier=earlier,
        digest=f"sha256:{digest.hexdigest()}",
    )


class _GoalReader:
    """Goals as skill keys: by words first, by meaning (embeddings) for goals naming no
    skill of the vocabulary. Memoized: many people word their goals alike."""

    def __init__(self, vocabulary: set[str]) -> None:
        self.vocabulary = vocabulary
        self._names: list[str] = sorted(vocabulary)
        self._vectors: Vectors | None = None
        self._memo: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._words: dict[str, list[str]] = {}  # goal -> its skill keys by words

    def read(self, goals: list[str], packed: bytes | None) -> tuple[str, ...]:
        key = tuple(goals)
        if key in self._memo:
            return self._memo[key]
        vectors = unpack(packed)
        found: dict[str, None] = {}
        for i, goal in enumerate(goals):
            keys = self._words.get(goal)
            if keys is None:
                keys = self._words[goal] = goal_skills(goal, self.vocabulary)
            if (
                vectors is not None
                and len(vectors) == len(goals)
                and not any(k in self.vocabulary for k in keys)
            ):
                meaning = self._closest(vectors[i : i + 1])
                keys = [meaning] if meaning is not None else keys
            for k in keys:
                found.setdefault(k)
        self._memo[key] = tuple(found)
        return self._memo[key]

    def _closest(self, goal: Vectors) -> str | None:
        if self._vectors is None:
            self._vectors = EMBEDDER.skill_vectors(self._names)
            if self._vectors is None:
                return None
        return closest_skills(goal, self._names, self._vectors)[0]


class PoolCache:
    """The last pools read, reused while their program's revision is unchanged."""

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._pools: OrderedDict[tuple[uuid.UUID, uuid.UUID], Pool] = OrderedDict()

    async def get(
        self, session: AsyncSession, org_id: uuid.UUID, program: ProgramProjection
    ) -> Pool:
        """The program's pool, from the cache if nothing changed since it was read."""
        key = (org_id, program.id)
        cached = self._pools.get(key)
        if (
            cached is not None
            and cached.program_version == program.version
            and await current_revision(session, org_id, program.id) == cached.revision
        ):
            self._pools.move_to_end(key)
            return cached
        pool = await load_pool(session, org_id, program)
        self._pools[key] = pool
        self._pools.move_to_end(key)
        while len(self._pools) > self._size:
            self._pools.popitem(last=False)
        return pool


POOLS = PoolCache()


# Row locks for many enrollments at once (a run applies tens of thousands): plain SQL with
# one array parameter, where an ORM `IN (...)` would render and bind every id on its own.
_LOCK_ENROLLMENTS = """
    SELECT id, status, employee_external_id FROM enrollment
    WHERE id = ANY($1::uuid[])
    ORDER BY id FOR UPDATE
"""
_SHARE_LOCK_PEOPLE = """
    SELECT external_id, employment_status FROM person
    WHERE org_id = $1 AND external_id = ANY($2::text[])
    ORDER BY id FOR SHARE
"""
# The same predicate as the partial index `ix_match_mentor_open`, so the index serves it.
_OPEN = ", ".join(f"'{s}'" for s in OPEN_STATUSES)
_MENTOR_LOADS = f"""
    SELECT mentor_enrollment_id,
           count(*) FILTER (WHERE status = 'active'),
           count(*) FILTER (WHERE status = 'proposed')
    FROM match
    WHERE mentor_enrollment_id = ANY($1::uuid[]) AND status IN ({_OPEN})
    GROUP BY mentor_enrollment_id
"""
# Peers: a pair takes a place of each, whichever side each is on.
_PEER_LOADS = f"""
    SELECT peer, count(*) FILTER (WHERE status = 'active'),
           count(*) FILTER (WHERE status = 'proposed')
    FROM (
        SELECT mentor_enrollment_id AS peer, status FROM match
        WHERE mentor_enrollment_id = ANY($1::uuid[]) AND status IN ({_OPEN})
        UNION ALL
        SELECT mentee_enrollment_id, status FROM match
        WHERE mentee_enrollment_id = ANY($1::uuid[]) AND status IN ({_OPEN})
    ) AS sides
    GROUP BY peer
"""


async def lock_participants(
    session: AsyncSession, org_id: uuid.UUID, enrollment_ids: set[uuid.UUID]
) -> dict[uuid.UUID, bool]:
    """Lock enrollments whose places or pairing are about to change, and share-lock their
    people, then say which are still active (enrollment and person), read fresh.

    A concurrent withdrawal or offboarding either commits first (and is seen here) or waits
    for this transaction (and then ends the match it made). Rows are locked in id order,
    enrollments before people, so two transactions can never deadlock on them.
    """
    if not enrollment_ids:
        return {}
    conn = await driver(session)
    enrollments = await conn.fetch(_LOCK_ENROLLMENTS, list(enrollment_ids))
    rows = await conn.fetch(_SHARE_LOCK_PEOPLE, org_id, list({e[2] for e in enrollments}))
    people: dict[str, str] = {external_id: status for external_id, status in rows}
    # A person matching has not heard of yet counts as active, as in `eligible`.
    active = {
        e[0]: e[1] == "active" and people.get(e[2], "active") == "active" for e in enrollments
    }
    return {i: active.get(i, False) for i in enrollment_ids}


async def mentor_loads(
    session: AsyncSession, mentor_ids: set[uuid.UUID], *, peer: bool = False
) -> dict[uuid.UUID, Load]:
    """Open matches per mentor (per peer: on either side), read fresh (callers hold the
    mentors' row locks)."""
    loads = {m: Load() for m in mentor_ids}
    if mentor_ids:
        for mentor_id, active, proposed in await (await driver(session)).fetch(
            _PEER_LOADS if peer else _MENTOR_LOADS, list(mentor_ids)
        ):
            loads[mentor_id] = Load(active=active, proposed=proposed)
    return loads
