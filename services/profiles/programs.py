"""Programs and enrollments use cases. They stage changes and events in the caller's
session; the request boundary commits both together. No HTTP and no Kafka here."""

import uuid
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.profiles import events
from services.profiles.models import Enrollment, Person, Program
from shared.errors import Conflict, FieldError, InvalidInput, NotFound
from shared.pagination import CreatedAfter
from shared.preconditions import Precondition, check

# Status moves a program may make; `closed` is final.
PROGRAM_TRANSITIONS = {
    "draft": {"draft", "open", "active", "closed"},
    "open": {"draft", "open", "active", "closed"},
    "active": {"open", "active", "closed"},
    "closed": {"closed"},
}
MENTOR_ROLES = {"mentor", "both"}


def _check_dates(program: Program) -> None:
    if program.starts_on and program.ends_on and program.ends_on < program.starts_on:
        raise InvalidInput([FieldError("ends_on", "must not be before starts_on")])


async def create_program(session: AsyncSession, org_id: uuid.UUID, data: dict[str, Any]) -> Program:
    """Set up a program and publish `program.created`."""
    program = Program(id=uuid.uuid4(), org_id=org_id, version=1, **data)
    session.add(program)
    await session.flush()
    events.publish(session, org_id, events.program_created(program))
    return program


async def get_program(
    session: AsyncSession, org_id: uuid.UUID, program_id: uuid.UUID, *, for_update: bool = False
) -> Program:
    """A program of the organization; another organization's is not found."""
    query = select(Program).where(Program.id == program_id, Program.org_id == org_id)
    program = await session.scalar(query.with_for_update() if for_update else query)
    if program is None:
        raise NotFound(f"program {program_id} not found")
    return program


async def list_programs(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    after: CreatedAfter | None,
    limit: int,
    status: str | None = None,
) -> list[Program]:
    """Programs, oldest first, starting after `after`."""
    query = select(Program).where(Program.org_id == org_id)
    if status is not None:
        query = query.where(Program.status == status)
    if after is not None:
        query = query.where(tuple_(Program.created_at, Program.id) > (after.created_at, after.id))
    query = query.order_by(Program.created_at, Program.id).limit(limit)
    return list((await session.scalars(query)).all())


async def update_program(
    session: AsyncSession,
    org_id: uuid.UUID,
    program_id: uuid.UUID,
    changes: dict[str, Any],
    precondition: Precondition | None = None,
) -> Program:
    """Change some fields of a program; publishes `program.updated` if anything changed."""
    program = await get_program(session, org_id, program_id, for_update=True)
    check(precondition, program.version, f"program {program_id}")
    new_status = changes.get("status")
    if new_status is not None and new_status not in PROGRAM_TRANSITIONS[program.status]:
        message = f"a {program.status} program cannot become {new_status}"
        raise InvalidInput([FieldError("status", message)])
    changed = {k: v for k, v in changes.items() if getattr(program, k) != v}
    if not changed:
        return program
    for key, value in changed.items():
        setattr(program, key, value)
    _check_dates(program)
    program.version += 1
    await session.flush()
    events.publish(session, org_id, events.program_updated(program))
    return program


MAX_TEXT_ANSWER = 2000


def check_answers(questions: list[dict[str, Any]], answers: dict[str, Any]) -> None:
    """Each answer fits its question (a listed option, options, 1-5, or text) and every
    required question is answered; else a 422 naming each `answers.<key>`."""
    asked = {q["key"]: q for q in questions}
    errors = [FieldError(f"answers.{key}", "the program asks no such question")
              for key in answers if key not in asked]  # fmt: skip
    for key, question in asked.items():
        field = f"answers.{key}"
        if key not in answers or answers[key] is None:
            if question.get("required"):
                errors.append(FieldError(field, "this question must be answered"))
            continue
        value, options, kind = answers[key], question.get("options") or [], question["type"]
        if kind == "single_choice" and value not in options:
            errors.append(FieldError(field, f"must be one of {options}"))
        elif kind == "multi_choice" and (
            not isinstance(value, list)
            or not value
            or len(set(map(str, value))) != len(value)
            or any(v not in options for v in value)
        ):
            errors.append(FieldError(field, f"must be a list of distinct choices of {options}"))
        elif kind == "scale" and (
            isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5
        ):
            errors.append(FieldError(field, "must be a whole number from 1 to 5"))
        elif kind == "text" and (not isinstance(value, str) or len(value) > MAX_TEXT_ANSWER):
            errors.append(
                FieldError(field, f"must be text of at most {MAX_TEXT_ANSWER} characters")
            )
    if errors:
        raise InvalidInput(errors)


def _check_role(program: Program, role: str, capacity: int | None) -> None:
    if role == "both" and program.format != "peer":
        raise InvalidInput([FieldError("role", "'both' is only for peer programs")])
    if role not in MENTOR_ROLES and capacity is not None:
        raise InvalidInput([FieldError("capacity", "only mentors have a capacity")])


async def enroll(
    session: AsyncSession, org_id: uuid.UUID, program_id: uuid.UUID, data: dict[str, Any]
) -> Enrollment:
    """Enroll an active employee in an open program; one active enrollment per person and
    program. Mentors default to the program's `max_mentees_per_mentor` capacity."""
    program = await get_program(session, org_id, program_id)
    if program.status == "closed":
        raise Conflict(f"program {program_id} is closed")
    external_id = data["employee_external_id"]
    person = await session.scalar(
        select(Person).where(Person.org_id == org_id, Person.external_id == external_id)
    )
    if person is None:
        raise InvalidInput([FieldError("employee_external_id", f"no employee {external_id!r}")])
    if person.employment_status == "inactive":
        message = f"employee {external_id!r} is inactive and cannot enroll"
        raise InvalidInput([FieldError("employee_external_id", message)])
    _check_role(program, data["role"], data.get("capacity"))
    check_answers(program.questions, data.get("answers") or {})
    if await _active_enrollment(session, program.id, person.id) is not None:
        raise Conflict(f"employee {external_id!r} is already enrolled in program {program_id}")
    if data["role"] in MENTOR_ROLES and data.get("capacity") is None:
        data = {**data, "capacity": program.max_mentees_per_mentor}
    enrollment = Enrollment(
        id=uuid.uuid4(),
        org_id=org_id,
        program_id=program.id,
        person_id=person.id,
        version=1,
        status="active",
        **data,
    )
    session.add(enrollment)
    await session.flush()
    events.publish(session, org_id, events.enrollment_created(enrollment))
    return enrollment


async def _active_enrollment(
    session: AsyncSession, program_id: uuid.UUID, person_id: uuid.UUID
) -> Enrollment | None:
    return await session.scalar(
        select(Enrollment).where(
            Enrollment.program_id == program_id,
            Enrollment.person_id == person_id,
            Enrollment.status == "active",
        )
    )


async def get_enrollment(
    session: AsyncSession,
    org_id: uuid.UUID,
    program_id: uuid.UUID,
    enrollment_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Enrollment:
    """An enrollment of a program of the organization."""
    query = select(Enrollment).where(
        Enrollment.id == enrollment_id,
        Enrollment.program_id == program_id,
        Enrollment.org_id == org_id,
    )
    enrollment = await session.scalar(query.with_for_update() if for_update else query)
    if enrollment is None:
        raise NotFound(f"enrollment {enrollment_id} not found")
    return enrollment


async def list_enrollments(
    session: AsyncSession,
    org_id: uuid.UUID,
    program_id: uuid.UUID,
    *,
    after: CreatedAfter | None,
    limit: int,
    status: str | None = None,
    role: str | None = None,
    employee_external_id: str | None = None,
) -> list[Enrollment]:
    """A program's enrollments, oldest first, starting after `after` (only one
    employee's, if named)."""
    await get_program(session, org_id, program_id)
    query = select(Enrollment).where(
        Enrollment.program_id == program_id, Enrollment.org_id == org_id
    )
    if status is not None:
        query = query.where(Enrollment.status == status)
    if role is not None:
        query = query.where(Enrollment.role == role)
    if employee_external_id is not None:
        query = query.where(Enrollment.employee_external_id == employee_external_id)
    if after is not None:
        query = query.where(
            tuple_(Enrollment.created_at, Enrollment.id) > (after.created_at, after.id)
        )
    query = query.order_by(Enrollment.created_at, Enrollment.id).limit(limit)
    return list((await session.scalars(query)).all())


async def update_enrollment(
    session: AsyncSession,
    org_id: uuid.UUID,
    program_id: uuid.UUID,
    enrollment_id: uuid.UUID,
    changes: dict[str, Any],
    precondition: Precondition | None = None,
) -> Enrollment:
    """Change an enrollment; publishes `enrollment.updated` (or `.withdrawn` when its status
    becomes withdrawn). Reactivating needs an active employee and no other active
    enrollment of theirs in the program."""
    enrollment = await get_enrollment(session, org_id, program_id, enrollment_id, for_update=True)
    check(precondition, enrollment.version, f"enrollment {enrollment_id}")
    changed = {k: v for k, v in changes.items() if getattr(enrollment, k) != v}
    if not changed:
        return enrollment
    program = await get_program(session, org_id, program_id)
    role = changed.get("role", enrollment.role)
    if "role" in changed and role not in MENTOR_ROLES and "capacity" not in changed:
        changed["capacity"] = None
    if "role" in changed and role in MENTOR_ROLES and enrollment.capacity is None:
        changed.setdefault("capacity", program.max_mentees_per_mentor)
    _check_role(program, role, changed.get("capacity", enrollment.capacity))
    if "answers" in changed:
        check_answers(program.questions, changed["answers"])
    if changed.get("status") == "active":
        await _check_can_reactivate(session, org_id, program, enrollment)
    for key, value in changed.items():
        setattr(enrollment, key, value)
    enrollment.version += 1
    await session.flush()
    event = (
        events.enrollment_withdrawn(enrollment)
        if changed.get("status") == "withdrawn"
        else events.enrollment_updated(enrollment)
    )
    events.publish(session, org_id, event)
    return enrollment


async def _check_can_reactivate(
    session: AsyncSession, org_id: uuid.UUID, program: Program, enrollment: Enrollment
) -> None:
    if program.status == "closed":
        raise Conflict(f"program {program.id} is closed")
    person = await session.get(Person, enrollment.person_id)
    if person is None or person.employment_status == "inactive":
        message = f"employee {enrollment.employee_external_id!r} is inactive"
        raise InvalidInput([FieldError("employee_external_id", message)])
    if await _active_enrollment(session, program.id, enrollment.person_id) is not None:
        raise Conflict("the employee already has an active enrollment in this program")


async def withdraw_enrollment(
    session: AsyncSession,
    org_id: uuid.UUID,
    program_id: uuid.UUID,
    enrollment_id: uuid.UUID,
    precondition: Precondition | None = None,
) -> Enrollment:
    """Withdraw an enrollment (idempotent) and publish `enrollment.withdrawn`."""
    return await update_enrollment(
        session, org_id, program_id, enrollment_id, {"status": "withdrawn"}, precondition
    )


async def withdraw_all_of_person(
    session: AsyncSession, org_id: uuid.UUID, person_id: uuid.UUID
) -> list[Enrollment]:
    """Withdraw every active enrollment of a person (offboarding)."""
    return await withdraw_all_of_people(session, org_id, [person_id])


async def withdraw_all_of_people(
    session: AsyncSession, org_id: uuid.UUID, person_ids: list[uuid.UUID]
) -> list[Enrollment]:
    """Withdraw every active enrollment of these people, one `enrollment.withdrawn` each."""
    if not person_ids:
        return []
    active = (
        await session.scalars(
            select(Enrollment)
            .where(
                Enrollment.org_id == org_id,
                Enrollment.person_id.in_(person_ids),
                Enrollment.status == "active",
            )
            .with_for_update()
        )
    ).all()
    for enrollment in active:
        enrollment.status = "withdrawn"
        enrollment.version += 1
    await session.flush()
    for enrollment in active:
        events.publish(session, org_id, events.enrollment_withdrawn(enrollment))
    return list(active)
