"""Feedback's projections of matches and enrollments, fed real events through the real
broker: redelivered and reordered events leave the same rows as events in order."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from devstack.broker import Broker
from shared.events import (
    EnrollmentCreatedV1,
    EnrollmentWithdrawnV1,
    MatchAcceptedV1,
    MatchCreatedV1,
    MatchEndedV1,
)
from tests.feedback.support import Connect, envelope, produce, rows
from tests.helpers import eventually

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def match_state(match_id: uuid.UUID, program_id: uuid.UUID, version: int, status: str) -> Any:
    return dict(
        match_id=match_id, program_id=program_id, version=version,
        mentee_enrollment_id=uuid.UUID(int=1), mentor_enrollment_id=uuid.UUID(int=2),
        mentee_external_id="E-1", mentor_external_id="M-1", status=status, score=0.5,
    )  # fmt: skip


async def test_match_projection_under_redelivery_and_reordering(
    stack: Any, broker: Broker, org: tuple[str, dict[str, str]], service_db: Connect
) -> None:
    org_id, _ = org
    program_id, match_id = uuid.uuid4(), uuid.uuid4()
    created = envelope(MatchCreatedV1(**match_state(match_id, program_id, 1, "proposed")),
                       org_id, at=T0)  # fmt: skip
    accepted = envelope(
        MatchAcceptedV1(**match_state(match_id, program_id, 2, "active")),
        org_id,
        at=T0 + timedelta(days=1),
    )
    ended = envelope(
        MatchEndedV1(**match_state(match_id, program_id, 3, "ended") | {"end_reason": "x"}),
        org_id,
        at=T0 + timedelta(days=40),
    )
    # Out of order, and the accepted event twice.
    await produce(broker, ended, accepted, created, accepted)

    async def projected() -> list[dict[str, Any]]:
        found = await rows(service_db, "SELECT * FROM match WHERE id = $1", match_id)
        return found if found and found[0]["created_at"] is not None else []

    (row,) = await eventually(projected)
    assert row["status"] == "ended" and row["version"] == 3 and row["end_reason"] == "x"
    assert row["created_at"] == T0
    assert row["activated_at"] == T0 + timedelta(days=1)
    assert row["ended_at"] == T0 + timedelta(days=40)
    assert str(row["org_id"]) == org_id and row["mentee_external_id"] == "E-1"


async def test_enrollment_projection_keeps_creation_and_withdrawal_times(
    stack: Any, broker: Broker, org: tuple[str, dict[str, str]], service_db: Connect
) -> None:
    org_id, _ = org
    state = dict(enrollment_id=uuid.uuid4(), program_id=uuid.uuid4(), person_id=uuid.uuid4(),
                 employee_external_id="E-9", role="mentee")  # fmt: skip
    withdrawn = envelope(
        EnrollmentWithdrawnV1(**state, version=2, status="withdrawn"),
        org_id,
        at=T0 + timedelta(days=3),
    )
    created = envelope(EnrollmentCreatedV1(**state, version=1), org_id, at=T0)
    await produce(broker, withdrawn, created, withdrawn)

    async def projected() -> list[dict[str, Any]]:
        found = await rows(
            service_db, "SELECT * FROM enrollment WHERE id = $1", state["enrollment_id"]
        )
        return found if found and found[0]["created_at"] is not None else []

    (row,) = await eventually(projected)
    assert (row["status"], row["version"]) == ("withdrawn", 2)
    assert (row["created_at"], row["withdrawn_at"]) == (T0, T0 + timedelta(days=3))
