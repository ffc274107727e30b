"""Feedback's person consumer applied set-based on a real (throwaway) feedback database:
one batch holding several states of the same people, out of order and repeated, leaves
the history that one event at a time (in order) does."""

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.events import apply_people
from shared.events import CloudEvent, PersonDeactivatedV1, PersonUpsertedV1, make_event
from shared.events.people import PersonHistoryEntry, PersonState

ORG = uuid.uuid4()


def event(
    person_id: uuid.UUID, version: int, day: date, level: int, status: str = "active"
) -> tuple[CloudEvent, PersonState]:
    entry = PersonHistoryEntry(
        effective_date=day, employment_status=status, job_level=level, department="Ops"
    )
    model = PersonDeactivatedV1 if status == "inactive" else PersonUpsertedV1
    data = model(
        person_id=person_id, external_id=f"X-{person_id}", version=version, job_level=level,
        effective_date=day, employment_status=status, department="Ops", history_entry=entry,
    )  # fmt: skip
    envelope = make_event(data, source="test", orgid=ORG)
    return envelope.model_copy(update={"time": datetime(2026, 1, 1, tzinfo=UTC)}), data


async def history(session: AsyncSession, person_id: uuid.UUID) -> list[tuple[Any, ...]]:
    found = await session.execute(
        text(
            "SELECT effective_date, version, employment_status, job_level, next_date,"
            " prev_job_level FROM person_history WHERE person_id = :p ORDER BY effective_date"
        ),
        {"p": person_id},
    )
    return [tuple(r) for r in found]


async def test_a_batch_with_several_states_of_a_person_out_of_order(
    session: AsyncSession,
) -> None:
    ann, bob = uuid.uuid4(), uuid.uuid4()
    hired = event(ann, 1, date(2024, 1, 1), 1)
    promoted = event(ann, 2, date(2025, 3, 1), 2)
    left = event(ann, 3, date(2025, 8, 1), 2, "inactive")
    wrong = event(bob, 1, date(2024, 6, 1), 4)
    corrected = event(bob, 2, date(2024, 6, 1), 3)  # the same date, a newer version
    # One batch: newest first, a redelivery, and the correction before the wrong state.
    await apply_people(session, [left, promoted, left, corrected, hired, wrong])
    await session.commit()
    expected_ann = [
        (date(2024, 1, 1), 1, "active", 1, date(2025, 3, 1), None),
        (date(2025, 3, 1), 2, "active", 2, date(2025, 8, 1), 1),
        (date(2025, 8, 1), 3, "inactive", 2, None, 2),
    ]
    assert await history(session, ann) == expected_ann
    assert await history(session, bob) == [(date(2024, 6, 1), 2, "active", 3, None, None)]
    projected = await session.execute(
        text("SELECT version, employment_status FROM person WHERE id = :p"), {"p": ann}
    )
    assert [tuple(r) for r in projected] == [(3, "inactive")]

    # The same states again, one batch each in order: nothing changes.
    for one in (hired, promoted, left, wrong, corrected):
        await apply_people(session, [one])
        await session.commit()
    assert await history(session, ann) == expected_ann
    assert await history(session, bob) == [(date(2024, 6, 1), 2, "active", 3, None, None)]

    # A late state between two others, alone: its neighbours' segments follow.
    await apply_people(session, [event(ann, 4, date(2024, 9, 1), 5)])
    await session.commit()
    assert [(r[0], r[4], r[5]) for r in await history(session, ann)] == [
        (date(2024, 1, 1), date(2024, 9, 1), None),
        (date(2024, 9, 1), date(2025, 3, 1), 1),
        (date(2025, 3, 1), date(2025, 8, 1), 5),
        (date(2025, 8, 1), None, 2),
    ]
