"""Profiles HTTP routes: thin, they parse, call the domain, and shape the answer."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.profiles import bulk, domain, reads
from services.profiles.schemas import (
    BulkIn,
    BulkOut,
    EmployeeIn,
    EmployeeOut,
    EmploymentStatus,
    OrganizationIn,
    OrganizationOut,
    ValidBulkIn,
)
from shared.errors import FieldError, InvalidInput, NotFound
from shared.identity import AdminCaller, OrgAdminId, OrgCaller, caller_from_request, require_scope
from shared.pagination import Cursor, Limit, Page, decode_position, encode_cursor, page_of
from shared.preconditions import IfMatch, etag, parse_if_match
from shared.service import PoolDep, SessionDep

router = APIRouter(dependencies=[require_scope("employees")])


async def _external_id(
    external_id: Annotated[
        str, Path(min_length=1, max_length=255, description="HRIS id; `bulk` is reserved")
    ],
) -> str:
    # `/v1/employees/bulk` is the bulk operation (OpenAPI: a concrete path beats a template),
    # so it is never an employee's path: other methods there are a 405, not an employee.
    if external_id == "bulk":
        raise StarletteHTTPException(405)
    return external_id


ExternalIdPath = Annotated[str, Depends(_external_id)]


@router.post("/v1/organizations", status_code=201, response_model=OrganizationOut)
async def create_organization(
    body: OrganizationIn, session: SessionDep, _: AdminCaller
) -> OrganizationOut:
    """Create an organization (platform admin only)."""
    org = await domain.create_organization(session, body.name)
    return OrganizationOut.model_validate(org)


@router.get("/v1/organizations/{org_id}", response_model=OrganizationOut)
async def get_organization(
    org_id: uuid.UUID, session: SessionDep, request: Request
) -> OrganizationOut:
    """An organization: the admin sees any, an API key only its own."""
    caller = caller_from_request(request)
    if not caller.is_admin and caller.org_id != org_id:
        raise NotFound(f"organization {org_id} not found")
    return OrganizationOut.model_validate(await domain.get_organization(session, org_id))


@router.put(
    "/v1/employees/{external_id}",
    response_model=EmployeeOut,
    responses={201: {"model": EmployeeOut, "description": "Created (200: replaced)"}},
)
async def put_employee(
    external_id: ExternalIdPath,
    body: EmployeeIn,
    org_id: OrgAdminId,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> EmployeeOut:
    """Create or replace an employee by HRIS id (idempotent; organization-wide access)."""
    if body.external_id is not None and body.external_id != external_id:
        raise InvalidInput([FieldError("external_id", "does not match the path")])
    record = body.model_dump(exclude={"external_id"})
    result = await domain.upsert_employee(
        session, org_id, external_id, record, parse_if_match(if_match)
    )
    response.status_code = 201 if result.outcome == "created" else 200
    response.headers["ETag"] = etag(result.person.version)
    return EmployeeOut.model_validate(result.person)


@router.get("/v1/employees/{external_id}", response_model=EmployeeOut)
async def get_employee(external_id: ExternalIdPath, caller: OrgCaller, pool: PoolDep) -> Response:
    """One employee of the caller's organization (a member: only their own record)."""
    if caller.is_member and caller.subject != external_id:
        raise NotFound(f"employee {external_id} not found")
    assert caller.org_id is not None
    # The hottest read: one statement on the plain pool (services/profiles/reads.py),
    # serialized once there, not validated again by FastAPI on the way out.
    found = await reads.employee_json(pool, caller.org_id, external_id)
    if found is None:
        raise NotFound(f"employee {external_id!r} not found")
    body, version = found
    return Response(body, media_type="application/json", headers={"ETag": etag(version)})


@router.delete("/v1/employees/{external_id}", response_model=EmployeeOut)
async def offboard_employee(
    external_id: ExternalIdPath,
    org_id: OrgAdminId,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> EmployeeOut:
    """Offboard an employee: inactive, `person.deactivated`, enrollments withdrawn. The
    record stays (history), so the answer is the offboarded employee."""
    person = await domain.offboard_employee(session, org_id, external_id, parse_if_match(if_match))
    response.headers["ETag"] = etag(person.version)
    return EmployeeOut.model_validate(person)


async def bulk_body(request: Request) -> BulkIn:
    """The bulk body, parsed by pydantic-core straight from the bytes: a megabyte of JSON
    is a tenth of a bulk request's CPU through `json.loads`, a fiftieth this way. A batch
    whose records are all valid is validated whole in that one call; otherwise the records
    stay plain objects and are judged one by one."""
    raw = await request.body()
    try:
        return BulkIn(employees=ValidBulkIn.model_validate_json(raw).employees)
    except ValidationError:
        pass
    try:
        return BulkIn.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


@router.post(
    "/v1/employees/bulk",
    response_model=BulkOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": BulkIn.model_json_schema()}},
        }
    },
)
async def bulk_sync(
    body: Annotated[BulkIn, Depends(bulk_body)], org_id: OrgAdminId, session: SessionDep
) -> JSONResponse:
    """Upsert up to 1,000 employees; each record gets its own result (created, updated,
    unchanged, or error with the reasons), so one bad record never sinks the batch."""
    results = await bulk.bulk_upsert(session, org_id, body.employees)
    # The results are plain data already: skip re-validating 1,000 of them on the way out.
    return JSONResponse({"results": [r.as_json() for r in results]})


@router.get("/v1/employees", response_model=Page[EmployeeOut])
async def list_employees(
    org_id: OrgAdminId,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    employment_status: EmploymentStatus | None = None,
) -> Page[EmployeeOut]:
    """Employees of the caller's organization, by external id (organization-wide access)."""
    position = decode_position(cursor, external_id=str)
    after = position["external_id"] if position else None
    people = await domain.list_employees(
        session, org_id, after=after, limit=limit + 1, employment_status=employment_status
    )
    return page_of(
        people,
        limit,
        EmployeeOut.model_validate,
        lambda p: encode_cursor({"external_id": p.external_id}),
    )
