"""SCIM 2.0 provisioning (RFC 7643/7644) at /scim/v2, on the same people as /v1/employees.

The protocol (routing, validation, PUT and PATCH semantics, `attributes` projection,
`If-Match`, the SCIM error schema) is scim2-server's; this module is its storage: people
and groups in this service's database.

How a SCIM User maps onto an employee (the `person` row):
- `id` is the person's id (a UUID the service assigns); `meta.version` is a hash of the
  representation, so it changes whenever the SCIM view changes.
- `externalId` is the identity provider's id for the person. A SCIM-created person's
  employee `external_id` (the HRIS id keying /v1/employees and every event) is taken from
  `externalId` at creation, or from `userName` when there is none; afterwards the two
  are independent (the employee is never renamed). People synced through /v1/employees
  start with `externalId` = their HRIS id, and a SCIM create naming an existing employee
  by that id (who is not provisioned yet, or was deprovisioned) takes that employee over
  instead of duplicating them.
- `userName` (unique per organization, case-insensitive) is stored as given; people who
  were never provisioned show their email, or else their HRIS id.
- Columns win for what they map: `name.givenName`/`name.familyName`, `displayName`,
  `title`, `timezone` (IANA; the schema lists the valid names as canonicalValues),
  the primary (or first) `emails` value = `email`, `active` (false = `inactive`, which
  offboards: `person.deactivated`, enrollments withdrawn; true or unassigned = active,
  `leave` staying `leave`), and the enterprise
  extension's `department`, `division`, `costCenter` and `manager` (its `value` is the
  manager's SCIM id; stored as their HRIS id). Everything else (phone numbers,
  addresses, roles...) is kept as sent, in `person.scim`.
- `DELETE` offboards the person and deprovisions them: the SCIM resource is gone (404),
  the employee stays, inactive, for history.
Groups are SCIM-only (no events): `scim_group` and `scim_group_member` rows.
"""

import contextvars
import copy
import hashlib
import json
import uuid
import zoneinfo
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote

from pydantic import ValidationError
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    ETag,
    Filter,
    ForbiddenException,
    InvalidValueException,
    Meta,
    NotFoundException,
    Patch,
    PreconditionFailedException,
    Resource,
    ResourceType,
    ResponseParameters,
    Schema,
    ScimFilter,
    ScimProvider,
    SearchRequest,
    ServiceProviderConfig,
    Sort,
    UnauthorizedException,
    UniquenessException,
)
from scim2_models.path import (
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)
from scim2_server.applications.asgi import ASGIApplication, Receive, Scope, Send
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.service import ScimService
from scim2_server.storage import AsyncScimStorage, SearchPage
from scim2_server.utils import load_default_resource_types, load_default_schemas
from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    delete,
    false,
    func,
    not_,
    or_,
    select,
    text,
    true,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.profiles import domain, events
from services.profiles.models import Person, ScimGroup, ScimGroupMember
from services.profiles.schemas import EmployeeIn
from shared.db import unstorable_text, utcnow
from shared.identity import ORG_HEADER, ROLE_HEADER

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
MAX_RESULTS = 200

# --- the service description -----------------------------------------------------------


def build_provider() -> ScimProvider:
    """RFC 7643's User (with the enterprise extension) and Group, as served here."""
    schemas = load_default_schemas()
    user = schemas[USER_SCHEMA]
    # People authenticate with their identity provider, never with us: no passwords.
    user.attributes = [a for a in user.attributes or [] if a.name != "password"]
    for attribute in user.attributes:
        if attribute.name == "timezone":
            attribute.canonical_values = sorted(zoneinfo.available_timezones())
    discovery = [ServiceProviderConfig.to_schema(), ResourceType.to_schema(), Schema.to_schema()]
    config = ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="API key",
                description="Authorization: Bearer <Mentorbus API key>",
                primary=True,
            )
        ],
    )
    return ScimProvider.from_discovery(
        [*schemas.values(), *discovery], load_default_resource_types().values(), config=config
    )


# --- per-request context ---------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    session: AsyncSession
    org_id: uuid.UUID
    base_url: str


_CONTEXT: contextvars.ContextVar[_Context] = contextvars.ContextVar("scim_context")


def _ctx() -> _Context:
    return _CONTEXT.get()


# --- helpers ---------------------------------------------------------------------------


def _version(doc: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
    return f'W/"{digest[:20]}"'


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _set(doc: dict[str, Any], key: str, value: Any) -> None:
    if value is None or value == [] or value == {}:
        doc.pop(key, None)
    else:
        doc[key] = value


def _primary_email(doc: dict[str, Any]) -> dict[str, Any] | None:
    emails = doc.get("emails") or []
    return next((e for e in emails if e.get("primary")), emails[0] if emails else None)


def _invalid(message: str) -> InvalidValueException:
    return InvalidValueException(detail=message)


# --- people <-> SCIM Users -------------------------------------------------------------


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
    _set(doc, "externalId", person.scim_external_id)
    name = dict(doc.get("name") or {})
    _set(name, "givenName", person.given_name)
    _set(name, "familyName", person.family_name)
    _set(doc, "name", name)
    _set(doc, "displayName", person.display_name)
    _set(doc, "title", person.title)
    _set(doc, "timezone", person.time_zone)
    # An identity provider that removed `active` sees it absent while the person is active.
    if "active" in doc or person.scim is None or person.employment_status == "inactive":
        doc["active"] = person.employment_status != "inactive"
    primary = _primary_email(doc)
    if person.email is None:
        doc.pop("emails", None)
    elif primary is None:
        doc["emails"] = [{"value": person.email, "type": "work", "primary": True}]
    elif primary.get("value") != person.email:
        primary["value"] = person.email
    enterprise = dict(doc.get(ENTERPRISE) or {})
    _set(enterprise, "department", person.department)
    _set(enterprise, "division", person.division)
    _set(enterprise, "costCenter", person.cost_center)
    stored_manager = enterprise.get("manager") or {}
    if manager is None:
        enterprise.pop("manager", None)
    elif stored_manager.get("value") != str(manager.id):
        enterprise["manager"] = {
            "value": str(manager.id),
            "$ref": f"{base_url}/Users/{manager.id}",
            **({"displayName": manager.display_name} if manager.display_name else {}),
        }
    _set(doc, ENTERPRISE, enterprise)
    doc["schemas"] = [USER_SCHEMA, *([ENTERPRISE] if ENTERPRISE in doc else [])]
    _set(
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


def _resource(
    model: type[Resource[Any]], kind: str, doc: dict[str, Any], created: Any, modified: Any
) -> Resource[Any]:
    resource = model.model_validate(doc)
    resource.meta = Meta(
        resource_type=kind, created=created, last_modified=modified, version=_version(doc)
    )
    return resource


async def _user_resources(model: type[Resource[Any]], people: list[Person]) -> list[Resource[Any]]:
    ctx = _ctx()
    managers = await _people_by_external_id(
        ctx.session, ctx.org_id, {p.manager_external_id for p in people if p.manager_external_id}
    )
    groups = await _groups_of(ctx.session, [p.id for p in people])
    return [
        _resource(
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


def _provisioned(org_id: uuid.UUID) -> ColumnElement[bool]:
    return and_(Person.org_id == org_id, Person.scim_deleted_at.is_(None))


async def _get_person(resource_id: str | None, *, for_update: bool = False) -> Person:
    ctx = _ctx()
    person_id = _uuid(resource_id)
    query = select(Person).where(_provisioned(ctx.org_id), Person.id == person_id)
    person = (
        await ctx.session.scalar(query.with_for_update() if for_update else query)
        if person_id
        else None
    )
    if person is None:
        raise NotFoundException(detail=f"User {resource_id!r} not found")
    return person


async def _manager_external_id(doc: dict[str, Any]) -> str | None:
    manager = (doc.get(ENTERPRISE) or {}).get("manager") or {}
    value = manager.get("value")
    if value is None:
        return None
    ctx = _ctx()
    manager_id = _uuid(value)
    person = (
        await ctx.session.scalar(
            select(Person).where(Person.org_id == ctx.org_id, Person.id == manager_id)
        )
        if manager_id
        else None
    )
    if person is None:
        raise _invalid(f"manager {value!r} is not a user of this organization")
    return person.external_id


async def _employee_record(doc: dict[str, Any], current: Person | None) -> dict[str, Any]:
    """The employee fields a SCIM User sets, merged over the person's other fields and
    checked by the same rules as /v1/employees."""
    base: dict[str, Any] = {}
    if current is not None:
        base = {f: getattr(current, f) for f in EmployeeIn.model_fields if f != "external_id"}
    name = doc.get("name") or {}
    enterprise = doc.get(ENTERPRISE) or {}
    primary = _primary_email(doc)
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
        raise _invalid(problems) from None
    values = checked.model_dump(exclude={"external_id"})
    # Keep the address as sent (EmailStr normalizes it) so the representation round-trips.
    values["email"] = record["email"]
    return values


def _stored_document(resource: Resource[Any]) -> dict[str, Any]:
    doc: dict[str, Any] = resource.model_dump()
    for key in ("id", "meta", "groups", "schemas"):
        doc.pop(key, None)
    return doc


async def _current_document(person: Person) -> dict[str, Any]:
    ctx = _ctx()
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
    ctx = _ctx()
    taken = await ctx.session.scalar(
        select(Person.id).where(
            _provisioned(ctx.org_id),
            func.lower(Person.user_name) == user_name.lower(),
            *([Person.id != person_id] if person_id else []),
        )
    )
    if taken is not None:
        raise UniquenessException(detail=f"userName {user_name!r} is taken")


async def _write_user(person: Person | None, resource: Resource[Any]) -> Person:
    """Create (person None) or update a person from a whole SCIM User."""
    ctx = _ctx()
    doc = _stored_document(resource)
    user_name = cast(str, doc.get("userName"))
    await _check_user_name(person.id if person else None, user_name)
    record = await _employee_record(doc, person)
    if person is None:
        external_id = doc.get("externalId") or user_name
        person = await domain.find_employee(ctx.session, ctx.org_id, external_id, for_update=True)
        if person is not None and person.scim is not None and person.scim_deleted_at is None:
            raise UniquenessException(detail=f"employee {external_id!r} is already provisioned")
        if person is None:
            person = Person(id=uuid.uuid4(), org_id=ctx.org_id, external_id=external_id, version=0)
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
        raise _invalid(f"manager {manager!r} would make a cycle in the manager chain")
    was_inactive = before is not None and before["employment_status"] == "inactive"
    for key, value in record.items():
        setattr(person, key, value)
    person.user_name = user_name
    person.scim_external_id = doc.get("externalId")
    person.scim = doc
    person.scim_deleted_at = None
    person.updated_at = utcnow()
    if before is None or events.person_state(person) | {"version": 0} != before | {"version": 0}:
        person.version += 1
        try:
            await ctx.session.flush()
        except IntegrityError:
            raise UniquenessException(detail="a concurrent change took this user") from None
        await domain.record_person_change(ctx.session, person, was_inactive=was_inactive)
    return person


# --- groups ----------------------------------------------------------------------------


async def _group_members(group_ids: list[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
    if not group_ids:
        return {}
    rows = await _ctx().session.execute(
        select(ScimGroupMember.group_id, ScimGroupMember.member_id).where(
            ScimGroupMember.group_id.in_(group_ids)
        )
    )
    found: dict[uuid.UUID, set[str]] = {}
    for group_id, member_id in rows.tuples():
        found.setdefault(group_id, set()).add(str(member_id))
    return found


def group_document(group: ScimGroup, members: set[str]) -> dict[str, Any]:
    """A group's SCIM representation: as written, less members since removed."""
    doc = copy.deepcopy(group.scim)
    doc["id"] = str(group.id)
    doc["schemas"] = [GROUP_SCHEMA]
    doc["displayName"] = group.display_name
    _set(doc, "externalId", group.external_id)
    _set(doc, "members", [m for m in doc.get("members") or [] if m.get("value") in members])
    return doc


async def _group_resources(
    model: type[Resource[Any]], groups: list[ScimGroup]
) -> list[Resource[Any]]:
    members = await _group_members([g.id for g in groups])
    return [
        _resource(
            model,
            "Group",
            group_document(g, members.get(g.id, set())),
            g.created_at,
            g.updated_at,
        )
        for g in groups
    ]


async def _get_group(resource_id: str | None, *, for_update: bool = False) -> ScimGroup:
    ctx = _ctx()
    group_id = _uuid(resource_id)
    query = select(ScimGroup).where(ScimGroup.org_id == ctx.org_id, ScimGroup.id == group_id)
    group = (
        await ctx.session.scalar(query.with_for_update() if for_update else query)
        if group_id
        else None
    )
    if group is None:
        raise NotFoundException(detail=f"Group {resource_id!r} not found")
    return group


async def _member_rows(group_id: uuid.UUID, doc: dict[str, Any]) -> list[ScimGroupMember]:
    """Check that each member is a user or group of the organization."""
    ctx = _ctx()
    wanted = {m.get("value") for m in doc.get("members") or []}
    ids = {i for i in (_uuid(v) for v in wanted) if i is not None}
    if len(ids) != len(wanted):
        raise _invalid("members must be ids of users or groups")
    people = set(
        await ctx.session.scalars(
            select(Person.id).where(_provisioned(ctx.org_id), Person.id.in_(ids))
        )
    )
    groups = set(
        await ctx.session.scalars(
            select(ScimGroup.id).where(ScimGroup.org_id == ctx.org_id, ScimGroup.id.in_(ids))
        )
    )
    unknown = ids - people - groups
    if unknown:
        raise _invalid(f"no user or group {sorted(map(str, unknown))[0]} in this organization")
    return [
        ScimGroupMember(
            group_id=group_id, member_id=i, member_type="User" if i in people else "Group"
        )
        for i in ids
    ]


async def _write_group(group: ScimGroup | None, resource: Resource[Any]) -> ScimGroup:
    ctx = _ctx()
    doc = _stored_document(resource)
    if group is None:
        group = ScimGroup(
            id=uuid.uuid4(), org_id=ctx.org_id, display_name=doc.get("displayName"), version=0
        )
        ctx.session.add(group)
        await ctx.session.flush()
    rows = await _member_rows(group.id, doc)
    group.display_name = doc.get("displayName") or ""
    group.external_id = doc.get("externalId")
    group.scim = doc
    group.version += 1
    group.updated_at = utcnow()
    await ctx.session.execute(delete(ScimGroupMember).where(ScimGroupMember.group_id == group.id))
    ctx.session.add_all(rows)
    await ctx.session.flush()
    return group


# --- filters ---------------------------------------------------------------------------


class _Unsupported(Exception):
    """A filter the SQL translation does not cover; the search then filters in Python."""


def _string_match(column: Any, op: CompareOperator, value: Any, case_exact: bool) -> Any:
    if not isinstance(value, str):
        raise _Unsupported
    left = column if case_exact else func.lower(column)
    right = value if case_exact else value.lower()
    if op == CompareOperator.eq:
        return left == right
    if op == CompareOperator.ne:
        return or_(left != right, column.is_(None))
    escaped = right.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if op == CompareOperator.co:
        return left.like(f"%{escaped}%", escape="\\")
    if op == CompareOperator.sw:
        return left.like(f"{escaped}%", escape="\\")
    if op == CompareOperator.ew:
        return left.like(f"%{escaped}", escape="\\")
    raise _Unsupported


def _user_column(path: Any) -> tuple[Any, bool]:
    """The column of a User attribute path, and whether it compares case-exactly."""
    uri = (path.uri or "").lower()
    name = f"{path.attr}.{path.sub_attr}" if path.sub_attr else path.attr
    name = name.lower()
    if uri == ENTERPRISE.lower():
        columns = {"department": Person.department, "division": Person.division}
        columns["costcenter"] = Person.cost_center
        if name in columns:
            return columns[name], False
        raise _Unsupported
    if uri not in ("", USER_SCHEMA.lower()):
        raise _Unsupported
    user_name = func.coalesce(Person.user_name, Person.email, Person.external_id)
    columns_ci = {
        "username": user_name,
        "displayname": Person.display_name,
        "title": Person.title,
        "name.givenname": Person.given_name,
        "name.familyname": Person.family_name,
        "emails": Person.email,
        "emails.value": Person.email,
    }
    if name in columns_ci:
        return columns_ci[name], False
    if name == "externalid":
        return Person.scim_external_id, True
    if name == "id":
        return sql_cast(Person.id, String), True
    raise _Unsupported


def _user_filter(node: FilterNode) -> Any:
    """SQL for a User filter, or _Unsupported."""
    if isinstance(node, LogicalExpr):
        terms = [_user_filter(t) for t in node.terms]
        return and_(*terms) if node.op == LogicalOperator.and_ else or_(*terms)
    if isinstance(node, Not):
        return not_(_user_filter(node.expr))
    if isinstance(node, ValuePath):
        if str(node.attr_path).lower() == "emails" and isinstance(node.val_filter, Comparison):
            inner = node.val_filter
            if str(inner.attr_path).lower() == "value":
                return _string_match(Person.email, inner.op, inner.value, False)
        raise _Unsupported
    if isinstance(node, Present):
        if str(node.attr_path).lower() == "active":
            return true()
        column, _ = _user_column(node.attr_path)
        return column.is_not(None)
    if isinstance(node, Comparison):
        if str(node.attr_path).lower() == "active":
            if node.op not in (CompareOperator.eq, CompareOperator.ne) or not isinstance(
                node.value, bool
            ):
                raise _Unsupported
            active = Person.employment_status != "inactive"
            return active if (node.value == (node.op == CompareOperator.eq)) else not_(active)
        column, case_exact = _user_column(node.attr_path)
        if (
            str(node.attr_path).lower() in ("emails", "emails.value")
            and node.op == CompareOperator.eq
        ):
            # Any of the person's addresses, not only the primary one.
            other = text(
                "EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(person.scim->'emails', "
                "'[]'::jsonb)) AS e WHERE lower(e->>'value') = :scim_email)"
            ).bindparams(scim_email=str(node.value).lower())
            return or_(_string_match(column, node.op, node.value, False), other)
        return _string_match(column, node.op, node.value, case_exact)
    raise _Unsupported


def _group_filter(node: FilterNode) -> Any:
    """SQL for a Group filter, or _Unsupported."""
    if isinstance(node, LogicalExpr):
        terms = [_group_filter(t) for t in node.terms]
        return and_(*terms) if node.op == LogicalOperator.and_ else or_(*terms)
    if isinstance(node, Not):
        return not_(_group_filter(node.expr))
    if isinstance(node, Comparison):
        name = str(node.attr_path).lower()
        if name == "displayname":
            return _string_match(ScimGroup.display_name, node.op, node.value, False)
        if name == "externalid":
            return _string_match(ScimGroup.external_id, node.op, node.value, True)
        if name == "id":
            return _string_match(sql_cast(ScimGroup.id, String), node.op, node.value, True)
        if name in ("members", "members.value") and node.op == CompareOperator.eq:
            member = _uuid(node.value)
            if member is None:
                return false()
            return ScimGroup.id.in_(
                select(ScimGroupMember.group_id).where(ScimGroupMember.member_id == member)
            )
    raise _Unsupported


# --- the storage -----------------------------------------------------------------------


class PeopleStorage(AsyncScimStorage):
    """SCIM Users are people (see the module notes); Groups are SCIM-only."""

    def __init__(self, provider: ScimProvider) -> None:
        self.provider = provider

    def _model(self, resource_type: ResourceType) -> type[Resource[Any]]:
        return cast(type[Resource[Any]], self.provider.model_for(resource_type))

    async def get(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        response_parameters: ResponseParameters[Any] | None = None,
    ) -> Resource[Any]:
        """One User or Group of the caller's organization."""
        model = self._model(resource_type)
        if resource_type.name == "User":
            return (await _user_resources(model, [await _get_person(resource_id)]))[0]
        return (await _group_resources(model, [await _get_group(resource_id)]))[0]

    async def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        """A page of Users or Groups (or of both, for a search at the root), filtered in SQL
        where the filter allows it."""
        start = search_request.start_index_0 or 0
        count = MAX_RESULTS if search_request.count is None else search_request.count
        scim_filter = search_request.filter
        if len(resource_types) == 1:
            return await self._search_one(resource_types[0], scim_filter, start, count)
        # At the root, every type is one collection: oldest first, then paged.
        found: list[tuple[Any, str, Resource[Any]]] = []
        for resource_type in resource_types:
            page = await self._search_one(resource_type, scim_filter, 0, None)
            found += [(r.meta.created if r.meta else None, str(r.id), r) for r in page.resources]
        found.sort(key=lambda item: (item[0], item[1]))
        return SearchPage(len(found), [r for _, _, r in found[start : start + count]])

    async def _search_one(
        self,
        resource_type: ResourceType,
        scim_filter: ScimFilter[Any] | None,
        start: int,
        count: int | None,
    ) -> SearchPage:
        model = self._model(resource_type)
        ctx = _ctx()
        is_user = resource_type.name == "User"
        entity: Any = Person if is_user else ScimGroup
        base = _provisioned(ctx.org_id) if is_user else ScimGroup.org_id == ctx.org_id
        render = _user_resources if is_user else _group_resources
        try:
            condition = (
                (_user_filter if is_user else _group_filter)(scim_filter.ast)
                if scim_filter is not None
                else true()
            )
        except _Unsupported:
            condition = None
        order = (entity.created_at, entity.id)
        if condition is not None:
            total = await ctx.session.scalar(
                select(func.count()).select_from(entity).where(base, condition)
            )
            query = select(entity).where(base, condition).order_by(*order).offset(start)
            rows = list(await ctx.session.scalars(query.limit(count)))
            return SearchPage(total or 0, await render(model, rows))
        # A filter beyond the SQL translation: evaluate it on every resource (correct,
        # but reads the whole organization).
        every = list(await ctx.session.scalars(select(entity).where(base).order_by(*order)))
        bound = cast(Any, ScimFilter)[model](str(scim_filter))
        found = [r for r in await render(model, every) if bound.match(r)]
        return SearchPage(len(found), found[start : None if count is None else start + count])

    async def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        """Provision a User (or take over the HRIS employee it names) or create a Group."""
        if resource_type.name == "User":
            person = await _write_user(None, resource)
            return (await _user_resources(self._model(resource_type), [person]))[0]
        group = await _write_group(None, resource)
        return (await _group_resources(self._model(resource_type), [group]))[0]

    async def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        """Replace a User or Group with its whole new state (PUT and PATCH)."""
        model = self._model(resource_type)
        if resource_type.name == "User":
            person = await _get_person(resource.id, for_update=True)
            await self._check_version(model, resource_type, resource.id, expected_version)
            person = await _write_user(person, resource)
            return (await _user_resources(model, [person]))[0]
        group = await _get_group(resource.id, for_update=True)
        await self._check_version(model, resource_type, resource.id, expected_version)
        group = await _write_group(group, resource)
        return (await _group_resources(model, [group]))[0]

    async def _check_version(
        self,
        model: type[Resource[Any]],
        resource_type: ResourceType,
        resource_id: str | None,
        expected_version: str | None,
    ) -> None:
        if expected_version is None:
            return
        current = await self.get(resource_type, cast(str, resource_id))
        if current.meta is None or current.meta.version != expected_version:
            raise PreconditionFailedException(detail="the resource changed meanwhile")

    async def delete(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        expected_version: str | None = None,
    ) -> None:
        """Deprovision a User (offboarding the person) or delete a Group."""
        ctx = _ctx()
        model = self._model(resource_type)
        if resource_type.name == "User":
            person = await _get_person(resource_id, for_update=True)
            await self._check_version(model, resource_type, resource_id, expected_version)
            await domain.offboard_employee(ctx.session, ctx.org_id, person.external_id)
            person.scim_deleted_at = utcnow()
            await ctx.session.execute(
                delete(ScimGroupMember).where(ScimGroupMember.member_id == person.id)
            )
            await ctx.session.flush()
            return
        group = await _get_group(resource_id, for_update=True)
        await self._check_version(model, resource_type, resource_id, expected_version)
        await ctx.session.execute(
            delete(ScimGroupMember).where(ScimGroupMember.member_id == group.id)
        )
        await ctx.session.delete(group)
        await ctx.session.flush()


# --- the ASGI application --------------------------------------------------------------


class ProfilesScimService(ScimService):
    """scim2-server's protocol, answering PATCH with the resource (200), which RFC 7644
    §3.5.2 allows and which identity providers expect more often than a bare 204."""

    def patch_response(
        self,
        base_url: str,
        resource: Resource[Any],
        response_parameters: ResponseParameters[Any],
    ) -> ScimResponse:
        """The patched resource, projected by `attributes`/`excludedAttributes` if asked."""
        published = self.publish(base_url, resource)
        return self.resource_response(
            published, Context.RESOURCE_REPLACEMENT_RESPONSE, response_parameters
        )


class ScimApplication(ASGIApplication):
    """scim2-server's ASGI application, one database transaction per request, confined to
    the organization the gateway authenticated."""

    def __init__(self, public_url: str) -> None:
        provider = build_provider()
        super().__init__(PeopleStorage(provider), provider, ProfilesScimService(provider))
        self.public_url = public_url.rstrip("/")
        # The service's sessions, known once the app this one is mounted in has started.
        self._sessionmaker: async_sessionmaker[AsyncSession] | None = None

    def get_base_url(self, scope: Scope) -> str:  # type: ignore[override]
        """Clients reach SCIM through the gateway, so locations name the gateway."""
        return f"{self.public_url}/scim/v2"

    def check_auth(self, request: ScimRequest) -> None:
        """The gateway authenticated the caller and named their organization."""
        if _uuid(request.header(ORG_HEADER)) is None:
            raise UnauthorizedException(detail="an organization API key is required")
        if request.header(ROLE_HEADER) == "member":
            raise ForbiddenException(detail="provisioning needs organization-wide access")

    def needs_auth(self, request: ScimRequest) -> bool:
        """Every SCIM request is an organization's, discovery included."""
        return True

    async def dispatch_request(self, request: ScimRequest) -> ScimResponse:
        """Serve a request in a transaction committed only if it succeeded."""
        self.check_auth(request)
        assert self._sessionmaker is not None, "mounted in a started service app"
        async with self._sessionmaker() as session:
            org_id = cast(uuid.UUID, _uuid(request.header(ORG_HEADER)))
            token = _CONTEXT.set(_Context(session, org_id, request.base_url))
            try:
                response = await self.handler.handle(request)
                if int(response.status) < 400:
                    await session.commit()
                return response
            except IntegrityError:
                # A concurrent request took a unique value first (e.g. the userName).
                raise UniquenessException(detail="a concurrent change conflicts") from None
            except DBAPIError as exc:
                if unstorable_text(exc):
                    raise _invalid("text may not contain NUL characters") from None
                raise
            finally:
                _CONTEXT.reset(token)

    @staticmethod
    async def send_response(response: ScimResponse, send: Send) -> None:
        """Send the response with header values that HTTP allows: a Location naming an id
        with non-ASCII or control characters is percent-encoded (scim2-server sends it
        raw, which the HTTP server refuses)."""
        for name, value in list(response.headers.items()):
            if not (value.isascii() and value.isprintable()):
                response.headers[name] = quote(value, safe="!#$&'()*+,/:;=?@[]~%")
        await ASGIApplication.send_response(response, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve an ASGI request, with the database of the app this one is mounted in."""
        if scope["type"] == "http":
            self._sessionmaker = scope["app"].state.sessionmaker
        await super().__call__(scope, receive, send)


def application(public_url: str) -> ScimApplication:
    """The SCIM application to mount at /scim."""
    return ScimApplication(public_url)
