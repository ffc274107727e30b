"""Profiles use cases. They stage changes and events in the caller's session; the request
boundary commits both together. No HTTP and no Kafka here."""

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.profiles import events
from services.profiles.models import Organization, Person
from shared.errors import FieldError, InvalidInput, NotFound, PreconditionFailed

UpsertOutcome = Literal["created", "updated", "unchanged"]

# Longer chains than this are treated as a cycle: no real org chart is this deep.
MAX_MANAGER_CHAIN = 256


@dataclass(frozen=True)
class Precondition:
    """An `If-Match`: a version the stored record must have, or `any_version` (`*`)."""

    version: int | None = None
    any_version: bool = False


@dataclass
class UpsertResult:
    """What an upsert did."""

    person: Person
    outcome: UpsertOutcome


async def create_organization(session: AsyncSession, name: str) -> Organization:
    """Create a tenant."""
    org = Organization(id=uuid.uuid4(), name=name)
    session.add(org)
    await session.flush()
    events.publish(session, org.id, events.organization_created(org))
    return org


async def get_organization(session: AsyncSession, org_id: uuid.UUID) -> Organization:
    """A tenant by id."""
    org = await session.get(Organization, org_id)
    if org is None:
        raise NotFound(f"organization {org_id} not found")
    return org


async def find_employee(
    session: AsyncSession, org_id: uuid.UUID, external_id: str, *, for_update: bool = False
) -> Person | None:
    """An employee of the organization by HRIS id, or None."""
    query = select(Person).where(Person.org_id == org_id, Person.external_id == external_id)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def get_employee(session: AsyncSession, org_id: uuid.UUID, external_id: str) -> Person:
    """An employee of the organization; another organization's is not found."""
    person = await find_employee(session, org_id, external_id)
    if person is None:
        raise NotFound(f"employee {external_id!r} not found")
    return person


async def list_employees(
    session: AsyncSession, org_id: uuid.UUID, *, after: str | None, limit: int
) -> list[Person]:
    """Employees ordered by external id, starting after `after`."""
    query = select(Person).where(Person.org_id == org_id).order_by(Person.external_id)
    if after is not None:
        query = query.where(Person.external_id > after)
    return list((await session.scalars(query.limit(limit))).all())


def changed_fields(person: Person, record: dict[str, Any]) -> dict[str, Any]:
    """The fields of `record` whose values differ from the stored person."""
    return {k: v for k, v in record.items() if getattr(person, k) != v}


async def _manager_chain_reaches(
    session: AsyncSession, org_id: uuid.UUID, manager_external_id: str, target: str
) -> bool:
    """Whether walking up from `manager_external_id` reaches `target` (a cycle)."""
    current: str | None = manager_external_id
    for _ in range(MAX_MANAGER_CHAIN):
        if current is None:
            return False
        if current == target:
            return True
        current = await session.scalar(
            select(Person.manager_external_id).where(
                Person.org_id == org_id, Person.external_id == current
            )
        )
    return True


async def upsert_employee(
    session: AsyncSession,
    org_id: uuid.UUID,
    external_id: str,
    record: dict[str, Any],
    precondition: Precondition | None = None,
) -> UpsertResult:
    """Create or replace an employee by HRIS id. Unchanged data changes nothing and
    publishes nothing; a manager may be named before they exist, but not in a cycle."""
    person = await find_employee(session, org_id, external_id, for_update=True)
    if precondition is not None:
        if person is None:
            raise PreconditionFailed(f"employee {external_id!r} does not exist")
        if not precondition.any_version and precondition.version != person.version:
            raise PreconditionFailed(
                f"employee {external_id!r} is at version {person.version}, "
                f"not {precondition.version}"
            )
    manager = record.get("manager_external_id")
    if manager is not None and await _manager_chain_reaches(session, org_id, manager, external_id):
        message = f"{manager!r} would make a cycle in the manager chain"
        raise InvalidInput([FieldError("manager_external_id", message)])
    if person is None:
        person = Person(
            id=uuid.uuid4(), org_id=org_id, external_id=external_id, version=1, **record
        )
        session.add(person)
        outcome: UpsertOutcome = "created"
    else:
        changes = changed_fields(person, record)
        if not changes:
            return UpsertResult(person, "unchanged")
        for key, value in changes.items():
            setattr(person, key, value)
        person.version += 1
        outcome = "updated"
    await session.flush()
    events.publish(session, org_id, events.person_upserted(person))
    return UpsertResult(person, outcome)
