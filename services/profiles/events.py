"""What profiles publishes (it consumes nothing). Every event carries the full state of
its aggregate, so consumers never call back."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.profiles.models import Enrollment, Organization, Person, Program
from shared.events import (
    EnrollmentCreatedV1,
    EnrollmentUpdatedV1,
    EnrollmentWithdrawnV1,
    EventData,
    OrganizationCreatedV1,
    PersonDeactivatedV1,
    PersonUpsertedV1,
    ProgramCreatedV1,
    ProgramUpdatedV1,
)
from shared.events.enrollments import EnrollmentState
from shared.events.people import PersonHistoryEntry, PersonState
from shared.events.programs import ProgramState
from shared.outbox import add_event

SOURCE = "mentorbus/profiles"


def publish(session: AsyncSession, org_id: uuid.UUID, data: EventData) -> None:
    """Stage an event in the current transaction."""
    add_event(session, data, source=SOURCE, orgid=org_id)


def organization_created(org: Organization) -> OrganizationCreatedV1:
    """The event for a new organization."""
    return OrganizationCreatedV1(organization_id=org.id, name=org.name)


PERSON_FIELDS = tuple(PersonState.model_fields.keys() - {"person_id", "history_entry"})
HISTORY_FIELDS = tuple(PersonHistoryEntry.model_fields)


def person_state(person: Person) -> dict[str, object]:
    """A person's full state, as the people events carry it (without the history entry)."""
    return {"person_id": person.id, **{f: getattr(person, f) for f in PERSON_FIELDS}}


def current_entry(person: Person) -> dict[str, object]:
    """The person's current state as a history entry."""
    return {f: getattr(person, f) for f in HISTORY_FIELDS}


def person_changed(
    person: Person, entry: dict[str, object] | None = None
) -> PersonUpsertedV1 | PersonDeactivatedV1:
    """`person.deactivated` once inactive (offboarded), else `person.upserted`; the
    history entry recorded is `entry`, or else the current state."""
    model = PersonDeactivatedV1 if person.employment_status == "inactive" else PersonUpsertedV1
    history_entry = entry if entry is not None else current_entry(person)
    return model.model_validate({**person_state(person), "history_entry": history_entry})


def _program_state(program: Program) -> dict[str, object]:
    fields = ProgramState.model_fields.keys() - {"program_id"}
    return {"program_id": program.id, **{f: getattr(program, f) for f in fields}}


def program_created(program: Program) -> ProgramCreatedV1:
    """Full state of a new program."""
    return ProgramCreatedV1.model_validate(_program_state(program))


def program_updated(program: Program) -> ProgramUpdatedV1:
    """Full state of a changed program."""
    return ProgramUpdatedV1.model_validate(_program_state(program))


def _enrollment_state(enrollment: Enrollment) -> dict[str, object]:
    fields = EnrollmentState.model_fields.keys() - {"enrollment_id"}
    return {"enrollment_id": enrollment.id, **{f: getattr(enrollment, f) for f in fields}}


def enrollment_created(enrollment: Enrollment) -> EnrollmentCreatedV1:
    """Full state of a new enrollment."""
    return EnrollmentCreatedV1.model_validate(_enrollment_state(enrollment))


def enrollment_updated(enrollment: Enrollment) -> EnrollmentUpdatedV1:
    """Full state of a changed enrollment."""
    return EnrollmentUpdatedV1.model_validate(_enrollment_state(enrollment))


def enrollment_withdrawn(enrollment: Enrollment) -> EnrollmentWithdrawnV1:
    """Full state of a withdrawn enrollment."""
    return EnrollmentWithdrawnV1.model_validate(_enrollment_state(enrollment))
