"""Event data for feeding matching's projection in tests (what profiles would publish)."""

import random
import uuid
from typing import Any

from services.matching.criteria import Participant
from shared.events import (
    EnrollmentCreatedV1,
    PersonUpsertedV1,
    ProgramCreatedV1,
    Skill,
)


def program_event(
    program_id: uuid.UUID | None = None,
    *,
    version: int = 1,
    max_mentees_per_mentor: int = 2,
    criteria: dict[str, Any] | None = None,
    status: str = "open",
    format: str = "one_to_one",
) -> ProgramCreatedV1:
    """A program as profiles announces it."""
    return ProgramCreatedV1(
        program_id=program_id or uuid.uuid4(),
        version=version,
        name="Grow",
        format=format,
        status=status,
        max_mentees_per_mentor=max_mentees_per_mentor,
        criteria=criteria or {},
    )


def person_event(
    external_id: str,
    *,
    person_id: uuid.UUID | None = None,
    version: int = 1,
    **fields: Any,
) -> PersonUpsertedV1:
    """A person at work, in London unless told otherwise."""
    values: dict[str, Any] = {
        "time_zone": "Europe/London",
        "languages": ["en"],
        "department": "Engineering",
        **fields,
    }
    return PersonUpsertedV1(
        person_id=person_id or uuid.uuid5(uuid.NAMESPACE_URL, external_id),
        external_id=external_id,
        version=version,
        **values,
    )


def enrollment_event(
    program_id: uuid.UUID,
    person: PersonUpsertedV1,
    role: str,
    *,
    skills: dict[str, int] | None = None,
    goals: list[str] | None = None,
    capacity: int | None = None,
    version: int = 1,
    enrollment_id: uuid.UUID | None = None,
) -> EnrollmentCreatedV1:
    """An enrollment of a person in a program."""
    return EnrollmentCreatedV1(
        enrollment_id=enrollment_id or uuid.uuid4(),
        program_id=program_id,
        person_id=person.person_id,
        employee_external_id=person.external_id,
        version=version,
        role=role,
        skills=[Skill(name=n, level=lv) for n, lv in (skills or {}).items()],
        goals=goals or [],
        capacity=capacity,
    )


def random_people(seed: int, mentees: int, mentors: int) -> tuple[list[Participant], ...]:
    """Small random cohorts with every kind of value, including unknown ones."""
    rng = random.Random(seed)
    # A stream of its own, so that the other values stay what they were before preferences.
    wishes = random.Random(seed + 7919)
    skills = ["python", "sql", "go", "leadership", "sales", "design", "rust"]

    def one(prefix: str, i: int, mentor: bool) -> Participant:
        return Participant(
            enrollment_id=uuid.uuid4(),
            external_id=f"{prefix}{i}",
            person_id=uuid.uuid4(),
            skills={s: rng.randint(1, 5) for s in rng.sample(skills, rng.randint(0, 4))},
            goals=() if mentor else tuple(rng.sample([*skills, "astrology"], rng.randint(0, 3))),
            languages=frozenset(rng.sample(["en", "de", "fr"], rng.randint(0, 2))),
            utc_offset=rng.choice([None, -8.0, 0.0, 1.0, 5.5, 9.0]),
            department=rng.choice([None, "Sales", "Engineering", "Data"]),
            seniority=rng.choice([None, rng.uniform(0, 20)]),
            managers=frozenset(rng.sample([f"M{k}" for k in range(mentors)], rng.randint(0, 2))),
            attributes={
                "location": rng.choice(["Berlin", "Paris", None]),
                "answers.industry": rng.choice(["Retail", "Banking", None]),
                "answers.topics": rng.sample(["ai", "cloud", "sales", "hiring"], rng.randint(0, 2)),
            },
            capacity=rng.randint(0, 2) if mentor else 0,
            preferences={} if mentor else preferences(),
        )

    def preferences() -> dict[str, frozenset[str]]:
        options = {
            "department": ["sales", "engineering", "data"],
            "location": ["berlin", "paris", "remote"],
            "languages": ["en", "de", "fr"],
            "attributes.answers.industry": ["retail", "banking"],
        }
        keys = wishes.sample(sorted(options), wishes.randint(0, 3))
        return {k: frozenset(wishes.sample(options[k], wishes.randint(1, 2))) for k in keys}

    return [one("E", i, False) for i in range(mentees)], [one("M", j, True) for j in range(mentors)]
