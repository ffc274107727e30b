"""Programs and enrollments routes: thin, they parse, call the domain, and shape the answer."""

import uuid
from datetime import datetime

from fastapi import APIRouter, Response

from services.profiles import programs
from services.profiles.api import IfMatch, etag, parse_if_match
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
from shared.errors import FieldError, InvalidInput
from shared.identity import OrgId
from shared.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor
from shared.service import SessionDep

router = APIRouter()


def _position(cursor: str | None) -> programs.Position | None:
    value = decode_cursor(cursor)
    if value is None:
        return None
    try:
        return programs.Position(
            datetime.fromisoformat(value["created_at"]), uuid.UUID(value["id"])
        )
    except (KeyError, TypeError, ValueError):
        raise InvalidInput([FieldError("cursor", "not a valid cursor")]) from None


def _next_cursor(items: list[ProgramOut] | list[EnrollmentOut], more: bool) -> str | None:
    if not more:
        return None
    last = items[-1]
    return encode_cursor({"created_at": last.created_at.isoformat(), "id": str(last.id)})


@router.post("/v1/programs", status_code=201, response_model=ProgramOut)
async def create_program(
    body: ProgramIn, org_id: OrgId, session: SessionDep, response: Response
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
        session, org_id, after=_position(cursor), limit=limit + 1, status=status
    )
    items = [ProgramOut.model_validate(p) for p in found[:limit]]
    return Page(items=items, next_cursor=_next_cursor(items, len(found) > limit))


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
    org_id: OrgId,
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
    org_id: OrgId,
    session: SessionDep,
    response: Response,
) -> EnrollmentOut:
    """Enroll an active employee as mentor, mentee, or both (peer programs)."""
    enrollment = await programs.enroll(session, org_id, program_id, body.model_dump())
    response.headers["ETag"] = etag(enrollment.version)
    return EnrollmentOut.model_validate(enrollment)


@router.get("/v1/programs/{program_id}/enrollments", response_model=Page[EnrollmentOut])
async def list_enrollments(
    program_id: uuid.UUID,
    org_id: OrgId,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    status: EnrollmentStatus | None = None,
    role: EnrollmentRole | None = None,
) -> Page[EnrollmentOut]:
    """A program's enrollments, oldest first."""
    found = await programs.list_enrollments(
        session,
        org_id,
        program_id,
        after=_position(cursor),
        limit=limit + 1,
        status=status,
        role=role,
    )
    items = [EnrollmentOut.model_validate(e) for e in found[:limit]]
    return Page(items=items, next_cursor=_next_cursor(items, len(found) > limit))


@router.get("/v1/programs/{program_id}/enrollments/{enrollment_id}", response_model=EnrollmentOut)
async def get_enrollment(
    program_id: uuid.UUID,
    enrollment_id: uuid.UUID,
    org_id: OrgId,
    session: SessionDep,
    response: Response,
) -> EnrollmentOut:
    """One enrollment."""
    enrollment = await programs.get_enrollment(session, org_id, program_id, enrollment_id)
    response.headers["ETag"] = etag(enrollment.version)
    return EnrollmentOut.model_validate(enrollment)


@router.patch("/v1/programs/{program_id}/enrollments/{enrollment_id}", response_model=EnrollmentOut)
async def update_enrollment(
    program_id: uuid.UUID,
    enrollment_id: uuid.UUID,
    body: EnrollmentPatch,
    org_id: OrgId,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> EnrollmentOut:
    """Change an enrollment (only the fields sent); `If-Match` guards against lost updates."""
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
    org_id: OrgId,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> EnrollmentOut:
    """Withdraw an enrollment (it stays, as history, with status `withdrawn`)."""
    enrollment = await programs.withdraw_enrollment(
        session, org_id, program_id, enrollment_id, parse_if_match(if_match)
    )
    response.headers["ETag"] = etag(enrollment.version)
    return EnrollmentOut.model_validate(enrollment)
