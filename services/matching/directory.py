"""A program's mentor directory: search, filter and rank mentors, saying why each ranks
where it does. Read from the cached candidate pool; no HTTP and no Kafka here."""

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.matching.criteria import Participant
from services.matching.domain import current_pool
from services.matching.pool import Load, Pool, primary_language
from services.matching.skills import normalize_skill
from shared.errors import FieldError, InvalidInput
from shared.pagination import decode_cursor, encode_cursor


@dataclass(frozen=True)
class Query:
    """What the directory is asked for (every part optional)."""

    text: str | None = None
    skill: str | None = None
    language: str | None = None
    has_capacity: bool = False


@dataclass(frozen=True)
class Entry:
    """A mentor as the directory lists them."""

    enrollment_id: uuid.UUID
    employee_external_id: str
    skills: list[dict[str, Any]]
    languages: list[str]
    department: str | None
    remaining_capacity: int
    relevance: float
    reasons: list[str]


def decode_offset(cursor: str | None) -> int:
    """The position a directory cursor points at (422 naming `cursor` if not ours)."""
    position = decode_cursor(cursor)
    if position is None:
        return 0
    offset = position.get("offset")
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= 10**6:
        raise InvalidInput([FieldError("cursor", "not a valid cursor")])
    return offset


def encode_offset(offset: int) -> str:
    """A cursor for the directory's next page (ranked lists page by position)."""
    return encode_cursor({"offset": offset})


async def search(
    session: AsyncSession,
    org_id: uuid.UUID,
    program_id: uuid.UUID,
    query: Query,
    offset: int,
    limit: int,
) -> list[Entry]:
    """The matching mentors ranked by relevance (then places left, then id), a page."""
    pool = await current_pool(session, org_id, program_id)
    found = [e for m in pool.mentors if (e := rank(pool, m, query)) is not None]
    found.sort(key=lambda e: (-e.relevance, -e.remaining_capacity, e.employee_external_id))
    return found[offset : offset + limit]


def rank(pool: Pool, mentor: Participant, query: Query) -> Entry | None:
    """A mentor's directory entry if they fit the query (all words, the skill, the
    language, a place left when asked), with relevance and reasons; else None."""
    load = pool.load.get(mentor.enrollment_id) or Load()
    places = pool.capacity.get(mentor.enrollment_id, 0)
    remaining = max(0, places - load.active - load.proposed)
    if query.has_capacity and remaining <= 0:
        return None
    relevance = 0.0
    reasons: list[str] = []
    if query.skill:
        key = normalize_skill(query.skill)
        level = mentor.skills.get(key)
        if level is None:
            return None
        relevance += level
        reasons.append(f"knows {key} at level {level} of 5")
    if query.language:
        lang = primary_language(query.language)
        if lang not in mentor.languages:
            return None
        reasons.append(f"speaks {lang}")
    for word in (query.text or "").casefold().split():
        skills = [(k, lv) for k, lv in mentor.skills.items() if word in k]
        about = [
            (name, str(value))
            for name, value in (
                ("department", mentor.department),
                ("title", mentor.attributes.get("title")),
                ("id", mentor.external_id),
            )
            if value and word in str(value).casefold()
        ]
        if not skills and not about:
            return None
        if skills:
            relevance += max(lv for _, lv in skills)
            listed = ", ".join(f"{k} ({lv})" for k, lv in sorted(skills, key=lambda s: -s[1])[:3])
            reasons.append(f"'{word}' matches skills {listed}")
        else:
            relevance += 1
            reasons.append(f"'{word}' matches {about[0][0]} {about[0][1]}")
    reasons.append(f"{remaining} of {places} places open")
    record = pool.enrollments.get(mentor.enrollment_id)
    return Entry(
        enrollment_id=mentor.enrollment_id,
        employee_external_id=mentor.external_id,
        skills=list(record.skills) if record is not None else [],
        languages=sorted(mentor.languages),
        department=mentor.department,
        remaining_capacity=remaining,
        relevance=relevance,
        reasons=reasons,
    )
