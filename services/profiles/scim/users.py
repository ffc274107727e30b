"""SCIM Users are people: the mapping both ways and writing one (see the package notes)."""

import asyncio
import copy
import uuid
from datetime import date
from typing import Any, cast

from pydantic import ValidationError
from scim2_models import (
    NotFoundException,
    Resource,
    UniquenessException,
)
from sqlalchemy import (
    and_,
    func,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.profiles import domain, events
from services.profiles.models import Person, ScimGroup, ScimGroupMember
from services.profiles.schemas import EmployeeIn
from services.profiles.scim.core import (
    ENTERPRISE,
    USER_SCHEMA,
    as_uuid,
    check_size,
    current,
    invalid,
    primary_email,
    provisioned,
    resource_of,
    set_value,
    stored_document,
)
from shared.db import utcnow


async def _people_by_external_id(
    session: AsyncSession, org_id: uuid.UUID, external_ids: set[str]
) -> dict[str, Person]:
    if not external_ids:
        return {}
    rows = await session.scalars(
        select(Person).where(Person.org_id == org_id, Person.external_id.in_(external_ids))
    )
    return {p.external_id: p for p in rows}


async def _groups_of(
    session: AsyncSession, member_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[ScimGroup]]:
    if not member_ids:
        return {}
    rows = await session.execute(
        select(ScimGroupMember.member_id, ScimGroup)
        .join(ScimGroup, ScimGroup.id == ScimGroupMember.group_id)
        .where(ScimGroupMember.member_id.in_(member_ids))
        .order_by(ScimGroup.created_at)
    )
    found: dict[uuid.UUID, list[ScimGroup]] = {}
    for member_id, group in rows.tuples():
        found.setdefault(member_id, []).append(group)
    return found


def user_document(
    person: Person, manager: Person | None, groups: list[ScimGroup], base_url: str
) -> dict[str, Any]:
    """The SCIM representation of a person (without `meta`): what the identity provider
    last wrote, with the mapped attributes taken from the columns."""
    doc = copy.deepcopy(person.scim) if person.scim is not None else {}
    doc.pop("groups", None)
    doc["id"] = str(person.id)
    doc["userName"] = person.user_name or person.email or person.external_id
    set_value(doc, "externalId", person.scim_external_id)
    name = dict(doc.get("name") or {})
    set_value(name, "givenName", person.given_name)
    set_value(name, "familyName", person.family_name)
    set_value(doc, "name", name)
    set_value(doc, "displayName", person.display_name)
    set_value(doc, "title", person.title)
    set_value(doc, "timezone", person.time_zone)
    # An identity provider that removed `active` sees it absent while the person is active.
    if "active" in doc or person.scim is None or person.employment_status == "inactive":
        doc["active"] = person.employment_status != "inactive"
    primary = primary_email(doc)
    if person.email is None:
        doc.pop("emails", None)
    elif primary is None:
        doc["emails"] = [{"value": person.email, "type": "work", "primary": True}]
    elif primary.get("value") != person.email:
        primary["value"] = person.email
    enterprise = dict(doc.get(ENTERPRISE) or {})
    set_value(enterprise, "department", person.department)
    set_value(enterprise, "division", person.division)
    set_value(enterprise, "costCenter", person.cost_center)
    stored_manager = enterprise.get("manager") or {}
    if manager is None and person.manager_external_id is None:
        enterprise.pop("manager", None)
    elif manager is None:
        # A forward reference (the manager is not here yet): shown as it was sent.
        enterprise["manager"] = stored_manager or {"value": person.manager_external_id}
    elif stored_manager.get("value") != str(manager.id):
        enterprise["manager"] = {
            "value": str(manager.id),
            "$ref": f"{base_url}/Users/{manager.id}",
            **({"displayName": manager.display_name} if manager.display_name else {}),
        }
    set_value(doc, ENTERPRISE, enterprise)
    doc["schemas"] = [USER_SCHEMA, *([ENTERPRISE] if ENTERPRISE in doc else [])]
    set_value(
        doc,
        "groups",
        [
            {
                "value": str(g.id),
                "$ref": f"{base_url}/Groups/{g.id}",
                "display": g.display_name,
                "type": "direct",
            }
            for g in groups
        ],
    )
    return doc


async def user_resources(model: type[Resource[Any]], people: list[Person]) -> list[Resource[Any]]:
    ctx = current()
    managers = await _people_by_external_id(
        ctx.session, ctx.org_id, {p.manager_external_id for p in people if p.manager_external_id}
    )
    groups = await _groups_of(ctx.session, [p.id for p in people])

    def render() -> list[Resource[Any]]:
        return [
            resource_of(
                model,
                "User",
                user_document(
                    p,
                    managers.get(p.manager_external_id or ""),
                    groups.get(p.id, []),
                    ctx.base_url,
                ),
                p.created_at,
                p.updated_at,
            )
            for p in people
        ]

    # A page can hold 200 representations of up to 256 KiB each: building and validating
    # them is CPU work, done off the event loop (the rows are loaded; nothing lazy-loads).
    return render() if len(people) <= 1 else await asyncio.to_thread(render)


async def get_person(resource_id: str | None, *, for_update: bool = False) -> Person:
    ctx = current()
    person_id = as_uuid(resource_id)
    query = select(Person).where(provisioned(ctx.org_id), Person.id == person_id)
    person = (
        await ctx.session.scalar(query.with_for_update() if for_update else query)
        if person_id
        else None
    )
    if person is None:
        raise NotFoundException(detail=f"User {resource_id!r} not found")
    return person


async def _manager_external_id(doc: dict[str, Any]) -> str | None:
    """The HRIS id of the manager a User names. `manager.value` is their SCIM id, or the
    manager's HRIS id / externalId (what some identity providers send). Nobody by that
    name yet is a forward reference, kept as the HRIS id to link: identity providers
    provision in any order, and the manager who arrives with it is linked at once."""
    manager = (doc.get(ENTERPRISE) or {}).get("manager") or {}
    value = manager.get("value") if isinstance(manager, dict) else None
    if value is None or value == "":
        return None
    value = str(value)
    ctx = current()
    manager_id = as_uuid(value)
    if manager_id is not None:
        found = await ctx.session.scalar(
            select(Person.external_id).where(Person.org_id == ctx.org_id, Person.id == manager_id)
        )
        if found is not None:
            return found
    by_key = await ctx.session.scalar(
        select(Person.external_id)
        .where(
            Person.org_id == ctx.org_id,
            or_(
                Person.external_id == value,
                and_(provisioned(ctx.org_id), Person.scim_external_id == value),
            ),
        )
        # The HRIS id first, then the oldest SCIM user with that externalId.
        .order_by((Person.external_id != value), Person.created_at)
        .limit(1)
    )
    return by_key if by_key is not None else value


async def _employee_record(doc: dict[str, Any], current: Person | None) -> dict[str, Any]:
    """The employee fields a SCIM User sets, merged over the person's other fields and
    checked by the same rules as /v1/employees."""
    base: dict[str, Any] = {}
    if current is not None:
        base = {f: getattr(current, f) for f in EmployeeIn.model_fields if f != "external_id"}
    name = doc.get("name") or {}
    enterprise = doc.get(ENTERPRISE) or {}
    primary = primary_email(doc)
    # An unassigned `active` means active (as on creation); `leave` stays leave.
    status = base.get("employment_status", "active")
    if doc.get("active") is False:
        status = "inactive"
    elif status == "inactive":
        status = "active"
    record = {
        **base,
        "email": primary.get("value") if primary else None,
        "given_name": name.get("givenName"),
        "family_name": name.get("familyName"),
        "display_name": doc.get("displayName"),
        "title": doc.get("title"),
        "time_zone": doc.get("timezone"),
        "department": enterprise.get("department"),
        "division": enterprise.get("division"),
        "cost_center": enterprise.get("costCenter"),
        "manager_external_id": await _manager_external_id(doc),
        "employment_status": status,
    }
    try:
        checked = EmployeeIn.model_validate(record)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise invalid(problems) from None
    # A SCIM change takes effect today: the date is set only when something changed.
    values = checked.model_dump(exclude={"external_id", "effective_date"})
    # Keep the address as sent (EmailStr normalizes it) so the representation round-trips.
    values["email"] = record["email"]
    return values


async def _current_document(person: Person) -> dict[str, Any]:
    ctx = current()
    wanted = {person.manager_external_id} if person.manager_external_id else set()
    managers = await _people_by_external_id(ctx.session, ctx.org_id, wanted)
    doc = user_document(person, managers.get(person.manager_external_id or ""), [], "")
    for key in ("id", "meta", "groups", "schemas", "userName", "externalId", "active"):
        doc.pop(key, None)
    return doc


def _merged(current: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    merged = {**current, **sent}
    if ENTERPRISE in current and ENTERPRISE in sent:
        merged[ENTERPRISE] = {**current[ENTERPRISE], **sent[ENTERPRISE]}
    return merged


async def _check_user_name(person_id: uuid.UUID | None, user_name: str) -> None:
    ctx = current()
    taken = await ctx.session.scalar(
        select(Person.id).where(
            provisioned(ctx.org_id),
            func.lower(Person.user_name) == user_name.lower(),
            *([Person.id != person_id] if person_id else []),
        )
    )
    if taken is not None:
        raise UniquenessException(detail=f"userName {user_name!r} is taken")


async def _taken(external_id: str) -> bool:
    ctx = current()
    found = await ctx.session.scalar(
        select(Person.id).where(Person.org_id == ctx.org_id, Person.external_id == external_id)
    )
    return found is not None


async def write_user(person: Person | None, resource: Resource[Any]) -> Person:
    """Create (person None) or update a person from a whole SCIM User."""
    ctx = current()
    doc = stored_document(resource)
    check_size(doc)
    user_name = cast(str, doc.get("userName"))
    await _check_user_name(person.id if person else None, user_name)
    record = await _employee_record(doc, person)
    if person is None:
        # externalId is the identity provider's key, not ours (not unique, may be absent):
        # it names the HRIS employee this user is when that employee is not provisioned
        # yet; otherwise the new employee is keyed by their SCIM id, which nobody shares.
        person_id = uuid.uuid4()
        key = doc.get("externalId")
        person = (
            await domain.find_employee(ctx.session, ctx.org_id, key, for_update=True)
            if key
            else None
        )
        if person is not None and person.scim is not None and person.scim_deleted_at is None:
            person = None
        if person is None:
            external_id = key if key and not await _taken(key) else str(person_id)
            person = Person(id=person_id, org_id=ctx.org_id, external_id=external_id, version=0)
            ctx.session.add(person)
            before: dict[str, Any] | None = None
        else:
            # Taking over an HRIS employee: what the identity provider does not send
            # keeps the HRIS value instead of being cleared.
            doc = _merged(await _current_document(person), doc)
            record = await _employee_record(doc, person)
            before = events.person_state(person)
    else:
        before = events.person_state(person)
    manager = record["manager_external_id"]
    if manager is not None and await domain.manager_chain_reaches(
        ctx.session, ctx.org_id, manager, person.external_id
    ):
        raise invalid(f"manager {manager!r} would make a cycle in the manager chain")
    was_inactive = before is not None and before["employment_status"] == "inactive"
    for key, value in record.items():
        setattr(person, key, value)
    person.user_name = user_name
    person.scim_external_id = doc.get("externalId")
    person.scim = doc
    person.scim_deleted_at = None
    person.updated_at = utcnow()
    if before is None:
        person.created_at = person.updated_at  # not later than lastModified (at flush)
    if before is None or events.person_state(person) | {"version": 0} != before | {"version": 0}:
        person.version += 1
        person.effective_date = date.today()
        try:
            await ctx.session.flush()
        except IntegrityError:
            raise UniquenessException(detail="a concurrent change took this user") from None
        await domain.record_person_change(ctx.session, person, was_inactive=was_inactive)
    return person
