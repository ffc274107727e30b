"""HRIS history (effective dating) through the gateway: states synced in date order build
the history, an older state joins it without replacing the current one, bulk sync and
offboarding record dated states, and every person event carries its history entry."""

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import asyncpg
import httpx

from tests.profiles.support import outbox_events, unique

Connect = Callable[[str], Awaitable[asyncpg.Connection]]
Org = tuple[str, dict[str, str]]


def state(**fields: Any) -> dict[str, Any]:
    """An HRIS record with a level and an effective date."""
    return {"department": "Eng", "title": "Engineer", "employment_status": "active", **fields}


async def history(conn: asyncpg.Connection, person_id: str) -> list[tuple[Any, ...]]:
    rows = await conn.fetch(
        "SELECT effective_date, employment_status, job_level, department FROM employee_history"
        " WHERE person_id = $1 ORDER BY effective_date",
        person_id,
    )
    return [tuple(r) for r in rows]


async def test_states_in_date_order_build_history_and_older_states_never_overwrite(
    api: httpx.AsyncClient, org: Org, service_db: Connect
) -> None:
    _, key = org
    eid = unique("H")
    first = await api.put(
        f"/v1/employees/{eid}", json=state(job_level=3, effective_date="2024-01-01"), headers=key
    )
    assert first.status_code == 201, first.text
    person_id = first.json()["id"]
    promoted = await api.put(
        f"/v1/employees/{eid}", json=state(job_level=4, effective_date="2025-03-01"), headers=key
    )
    assert promoted.json()["job_level"] == 4 and promoted.json()["version"] == 2
    # An older state (a correction found later) joins the history only.
    older = await api.put(
        f"/v1/employees/{eid}",
        json=state(job_level=3, department="Ops", effective_date="2024-06-01"),
        headers=key,
    )
    assert older.status_code == 200
    body = older.json()
    assert (body["job_level"], body["department"], body["effective_date"]) == (
        4,
        "Eng",
        "2025-03-01",
    )
    assert body["version"] == 3
    # The same older state again changes nothing; the current state re-sent with a later
    # date neither (it has held since March).
    again = await api.put(
        f"/v1/employees/{eid}",
        json=state(job_level=3, department="Ops", effective_date="2024-06-01"),
        headers=key,
    )
    assert again.json()["version"] == 3
    same = await api.put(f"/v1/employees/{eid}", json=state(job_level=4), headers=key)
    assert same.json()["version"] == 3 and same.json()["effective_date"] == "2025-03-01"

    profiles = await service_db("profiles")
    try:
        assert await history(profiles, person_id) == [
            (date(2024, 1, 1), "active", 3, "Eng"),
            (date(2024, 6, 1), "active", 3, "Ops"),
            (date(2025, 3, 1), "active", 4, "Eng"),
        ]
        published = await outbox_events(profiles, person_id)
        assert [e["data"]["version"] for e in published] == [1, 2, 3]
        last = published[-1]["data"]
        assert last["job_level"] == 4 and last["effective_date"] == "2025-03-01"
        assert last["history_entry"] == {
            "effective_date": "2024-06-01",
            "employment_status": "active",
            "job_level": 3,
            "department": "Ops",
            "division": None,
            "title": "Engineer",
        }
        assert published[1]["data"]["history_entry"]["job_level"] == 4
    finally:
        await profiles.close()


async def test_bulk_history_and_offboarding_are_dated(
    api: httpx.AsyncClient, org: Org, service_db: Connect
) -> None:
    _, key = org
    a, b = unique("BA"), unique("BB")
    batches = [
        [{"external_id": a, **state(job_level=1, effective_date="2023-05-01")}],
        [
            {"external_id": a, **state(job_level=2, effective_date="2024-05-01")},
            {"external_id": b, **state(job_level=5, effective_date="2024-02-01")},
        ],
        [
            {
                "external_id": a,
                **state(job_level=2, employment_status="inactive", effective_date="2025-01-15"),
            },
            # Older than b's current state: history only, current stays level 5.
            {"external_id": b, **state(job_level=4, effective_date="2023-02-01")},
        ],
    ]
    for batch in batches:
        answer = await api.post("/v1/employees/bulk", json={"employees": batch}, headers=key)
        assert answer.status_code == 200, answer.text
        assert {r["status"] for r in answer.json()["results"]} <= {"created", "updated"}
    replay = await api.post("/v1/employees/bulk", json={"employees": batches[2]}, headers=key)
    assert [r["status"] for r in replay.json()["results"]] == ["unchanged", "unchanged"]

    got_a = (await api.get(f"/v1/employees/{a}", headers=key)).json()
    got_b = (await api.get(f"/v1/employees/{b}", headers=key)).json()
    assert (got_a["employment_status"], got_a["effective_date"]) == ("inactive", "2025-01-15")
    assert (got_b["job_level"], got_b["effective_date"], got_b["version"]) == (5, "2024-02-01", 2)

    c = unique("BC")
    await api.put(f"/v1/employees/{c}", json=state(effective_date="2022-01-01"), headers=key)
    deleted = await api.delete(f"/v1/employees/{c}", headers=key)
    assert deleted.json()["effective_date"] == date.today().isoformat()

    profiles = await service_db("profiles")
    try:
        assert await history(profiles, got_a["id"]) == [
            (date(2023, 5, 1), "active", 1, "Eng"),
            (date(2024, 5, 1), "active", 2, "Eng"),
            (date(2025, 1, 15), "inactive", 2, "Eng"),
        ]
        assert await history(profiles, got_b["id"]) == [
            (date(2023, 2, 1), "active", 4, "Eng"),
            (date(2024, 2, 1), "active", 5, "Eng"),
        ]
        assert [h[:2] for h in await history(profiles, deleted.json()["id"])] == [
            (date(2022, 1, 1), "active"),
            (date.today(), "inactive"),
        ]
        events_b = await outbox_events(profiles, got_b["id"])
        assert events_b[-1]["data"]["job_level"] == 5
        assert events_b[-1]["data"]["history_entry"]["job_level"] == 4
        events_a = await outbox_events(profiles, got_a["id"])
        assert events_a[-1]["type"] == "mentorbus.person.deactivated.v1"
    finally:
        await profiles.close()
