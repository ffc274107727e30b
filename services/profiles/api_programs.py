"""Programs and enrollments routes: thin, they parse, call the domain, and shape the answer."""

import uuid

from fastapi import APIRouter, Response

from services.profiles import programs
from services.profiles.models import Enrollment
from services.profiles.schemas import (
    EnrollmentIn,
    EnrollmentOut,
    EnrollmentPatch,
    EnrollmentRole,
    EnrollmentStatus,
    ProgramIn,
    ProgramOut,
    ProgramPatch,
    ProgramStatus,
)
from shared.errors import FieldError, Forbidden, InvalidInput, NotFound
from shared.identity import Caller, OrgAdminId, OrgCaller, OrgId, require_scope
from shared.pagination import (
    Cursor,
    Limit,
    Page,
    decode_created_after,
    encode_created_after,
    page_of,
)
from shared.preconditions import IfMatch, etag, parse_if_match
from shared.service import SessionDep

router = APIRouter(dependencies=[require_scope("programs")])


async def _own_enrollment(
    session: SessionDep, caller: Caller, program_id: uuid.UUID, enrollment_id: uuid.UUID
) -> Enrollment:
    """The enrollment, if the caller may see it: a member sees only their own (another
    person's is a 404, as if it did not exist)."""
    assert caller.org_id is not None
    enrollment = await programs.get_enrollment(session, caller.org_id, program_id, enrollment_id)
    if caller.is_member and enrollment.employee_external_id != caller.subject:
        raise NotFound(f"enrollment {enrollment_id} not found")
    return enrollment


@router.post("/v1/programs", status_code=201, response_model=ProgramOut)
async def create_program(
    body: ProgramIn, org_id: OrgAdminId, session: SessionDep, response: Response
) -> ProgramOut:
    """Set up a mentoring program."""
    program = await programs.create_program(session, org_id, body.model_dump())
    response.headers["ETag"] = etag(program.version)
    return ProgramOut.model_validate(program)


@router.get("/v1/programs", response_model=Page[ProgramOut])
async def list_programs(
    org_id: OrgId,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    status: ProgramStatus | None = None,
) -> Page[ProgramOut]:
    """The organization's programs, oldest first."""
    found = await programs.list_programs(
        session, org_id, after=decode_created_after(cursor), limit=limit + 1, status=status
    )
    return page_of(found, limit, ProgramOut.model_validate, encode_created_after)


@router.get("/v1/programs/{program_id}", response_model=ProgramOut)
async def get_program(
    program_id: uuid.UUID, org_id: OrgId, session: SessionDep, response: Response
) -> ProgramOut:
    """One program of the organization."""
    program = await programs.get_program(session, org_id, program_id)
    response.headers["ETag"] = etag(program.version)
    return ProgramOut.model_validate(program)


@router.patch("/v1/programs/{program_id}", response_model=ProgramOut)
async def update_program(
    program_id: uuid.UUID,
    body: ProgramPatch,
    org_id: OrgAdminId,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> ProgramOut:
    """Change a program (only the fields sent); `If-Match` guards against lost updates."""
    changes = body.model_dump(exclude_unset=True)
    for required in ("name", "format", "status", "max_mentees_per_mentor", "criteria"):
        if required in changes and changes[required] is None:
            raise InvalidInput([FieldError(required, "may not be null")])
    program = await programs.update_program(
        session, org_id, program_id, changes, parse_if_match(if_match)
    )
    response.headers["ETag"] = etag(program.version)
    return ProgramOut.model_validate(program)


@router.post("/v1/programs/{program_id}/enrollments", status_code=201, response_model=EnrollmentOut)
async def enroll(
    program_id: uuid.UUID,
    body: EnrollmentIn,
    caller: OrgCaller,
    session: SessionDep,
    response: Response,
) -> EnrollmentOut:
    """Enroll an active employee as mentor, mentee, or both (peer programs); a member
    enrolls only themselves."""
    if caller.is_member and body.employee_external_id != caller.subject:
        raise Forbidden("a member may enroll only themselves")
    assert caller.org_id is not None
    enrollment = await programs.enroll(session, caller.org_id, program_id, body.model_dump())
    response.headers["ETag"] = etag(enrollment.version)
    return EnrollmentOut.model_validate(enrollment)


@router.get("/v1/programs/{program_id}/enrollments", response_model=Page[EnrollmentOut])
async def list_enrollments(
    program_id: uuid.UUID,
    caller: OrgCaller,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    status: EnrollmentStatus | None = None,
    role: EnrollmentRole | None = None,
) -> Page[EnrollmentOut]:
    """A program's enrollments, oldest first (a member's: only their own)."""
    assert caller.org_id is not None
    found = await programs.list_enrollments(
        session,
        caller.org_id,
        program_id,
        after=decode_created_after(cursor),
        limit=limit + 1,
        status=status,
        role=role,
        employee_external_id=caller.subject if caller.is_member else None,
    )
    return page_of(found, limit, EnrollmentOut.model_validate, encode_created_after)


@router.get("/v1/programs/{program_id}/enrollments/{enrollment_id}", response_model=EnrollmentOut)
async def get_enrollment(
    program_id: uuid.UUID,
    enrollment_id: uuid.UUID,
    caller: OrgCaller,
    session: SessionDep,
    response: Response,
) -> EnrollmentOut:
    """One enrollment (a member: only their own)."""
    enrollment = await _own_enrollment(session, caller, program_id, enrollment_id)
    response.headers["ETag"] = etag(enrollment.version)
    return EnrollmentOut.model_validate(enrollment)


@router.patch("/v1/programs/{program_id}/enrollments/{enrollment_id}", response_model=EnrollmentOut)
async def update_enrollment(
    program_id: uuid.UUID,
    enrollment_id: uuid.UUID,
    body: EnrollmentPatch,
    caller: OrgCaller,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> EnrollmentOut:
    """Change an enrollment (only the fields sent; a member: only their own); `If-Match`
    guards against lost updates."""
    org_id = (await _own_enrollment(session, caller, program_id, enrollment_id)).org_id
    changes = body.model_dump(exclude_unset=True)
    for required in ("role", "skills", "goals", "languages", "preferences", "status"):
        if required in changes and changes[required] is None:
            raise InvalidInput([FieldError(required, "may not be null")])
    enrollment = await programs.update_enrollment(
        session, org_id, program_id, enrollment_id, changes, parse_if_match(if_match)
    )
    response.headers["ETag"] = etag(enrollment.version)
    return EnrollmentOut.model_validate(enrollment)


@router.delete(
    "/v1/programs/{program_id}/enrollments/{enrollment_id}", response_model=EnrollmentOut
)
async def withdraw_enrollment(
    program_id: uuid.UUID,
    enrollment_id: uuid.UUID,
    caller: OrgCaller,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> EnrollmentOut:
    """Withdraw an enrollment (it stays, as history, with status `withdrawn`; a member:
    only their own)."""
    org_id = (await _own_enrollment(session, caller, program_id, enrollment_id)).org_id
    enrollment = await programs.withdraw_enrollment(
        session, org_id, program_id, enrollment_id, parse_if_match(if_match)
    )
    response.headers["ETag"] = etag(enrollment.version)
    return EnrollmentOut.model_validate(enrollment)
