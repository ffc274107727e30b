"""Profiles use cases. They stage changes and events in the caller's session; the request
boundary commits both together. No HTTP and no Kafka here."""

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.profiles import events, programs
from services.profiles.models import EmployeeHistory, Organization, Person
from shared.db import utcnow
from shared.errors import FieldError, InvalidInput, NotFound
from shared.preconditions import Precondition, check

UpsertOutcome = Literal["created", "updated", "unchanged"]

# Longer chains than this are treated as a cycle: no real org chart is this deep.
MAX_MANAGER_CHAIN = 256


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


async def list_employees(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    after: str | None,
    limit: int,
    employment_status: str | None = None,
) -> list[Person]:
    """Employees ordered by external id, starting after `after`."""
    query = select(Person).where(Person.org_id == org_id).order_by(Person.external_id)
    if after is not None:
        query = query.where(Person.external_id > after)
    if employment_status is not None:
        query = query.where(Person.employment_status == employment_status)
    return list((await session.scalars(query.limit(limit))).all())


def changed_fields(person: Person, record: dict[str, Any]) -> dict[str, Any]:
    """The fields of `record` whose values differ from the stored person."""
    return {k: v for k, v in record.items() if getattr(person, k) != v}


async def manager_chain_reaches(
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
    publishes nothing; a manager may be named before they exist, but not in a cycle.
    Becoming inactive is an offboarding (see `offboard_employee`).

    Effective dating: `record["effective_date"]` (default today) is when the state took
    effect. A state older than the current one only joins the history (a new version, the
    current state untouched); a newer one replaces the current state. A state equal to the
    current one except for its date changes nothing (it has held since the earlier date)."""
    effective = record.get("effective_date") or date.today()
    record = {**record, "effective_date": effective}
    person = await find_employee(session, org_id, external_id, for_update=True)
    check(precondition, person.version if person else None, f"employee {external_id!r}")
    if person is not None and effective < person.effective_date:
        return await _record_past_state(session, person, record)
    manager = record.get("manager_external_id")
    if manager is not None and await manager_chain_reaches(session, org_id, manager, external_id):
        message = f"{manager!r} would make a cycle in the manager chain"
        raise InvalidInput([FieldError("manager_external_id", message)])
    if person is None:
        person = Person(
            id=uuid.uuid4(),
            org_id=org_id,
            external_id=external_id,
            scim_external_id=external_id,
            version=1,
            **record,
        )
        session.add(person)
        outcome: UpsertOutcome = "created"
        was_inactive = False
    else:
        changes = changed_fields(person, record)
        changes.pop("effective_date", None)
        if not changes:
            return UpsertResult(person, "unchanged")
        was_inactive = person.employment_status == "inactive"
        for key, value in changes.items():
            setattr(person, key, value)
        person.effective_date = effective
        person.version += 1
        outcome = "updated"
    await session.flush()
    await record_person_change(session, person, was_inactive=was_inactive)
    return UpsertResult(person, outcome)


async def _record_past_state(
    session: AsyncSession, person: Person, record: dict[str, Any]
) -> UpsertResult:
    """A state older than the current one: it joins the history (unless already there as
    is) and is published as the change's history entry; the current state stays."""
    entry = {f: record.get(f) for f in events.HISTORY_FIELDS}
    stored = await session.get(EmployeeHistory, (person.id, entry["effective_date"]))
    if stored is not None and all(getattr(stored, f) == v for f, v in entry.items()):
        return UpsertResult(person, "unchanged")
    person.version += 1
    await session.flush()
    await record_person_change(session, person, was_inactive=False, entry=entry)
    return UpsertResult(person, "updated")


async def write_history(
    session: AsyncSession, person: Person, entry: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Record a dated state of `person` (default: the current one); a state already held
    for that date is replaced. Returns the entry."""
    if entry is None:
        entry = events.current_entry(person)
    values = {"person_id": person.id, "org_id": person.org_id, "version": person.version, **entry}
    statement = pg_insert(EmployeeHistory).values(values)
    key = ("person_id", "effective_date")
    replaced = {k: statement.excluded[k] for k in values if k not in key}
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=list(key), set_=replaced | {"recorded_at": utcnow()}
        )
    )
    return entry


async def record_person_change(
    session: AsyncSession,
    person: Person,
    *,
    was_inactive: bool,
    entry: dict[str, Any] | None = None,
) -> None:
    """Record the change in the history and publish the person's new state with it; on
    becoming inactive, also withdraw their enrollments (offboarding), so matching and
    scheduling stop counting them."""
    entry = await write_history(session, person, entry)
    events.publish(session, person.org_id, events.person_changed(person, entry))
    if person.employment_status == "inactive" and not was_inactive:
        await programs.withdraw_all_of_person(session, person.org_id, person.id)


async def offboard_employee(
    session: AsyncSession,
    org_id: uuid.UUID,
    external_id: str,
    precondition: Precondition | None = None,
) -> Person:
    """Offboard: the employee becomes inactive (effective today), `person.deactivated` is
    published and their active enrollments are withdrawn. Offboarding an inactive employee
    changes nothing."""
    person = await find_employee(session, org_id, external_id, for_update=True)
    if person is None:
        raise NotFound(f"employee {external_id!r} not found")
    check(precondition, person.version, f"employee {external_id!r}")
    if person.employment_status == "inactive":
        return person
    person.employment_status = "inactive"
    person.effective_date = max(date.today(), person.effective_date)
    person.version += 1
    await session.flush()
    await record_person_change(session, person, was_inactive=False)
    return person
