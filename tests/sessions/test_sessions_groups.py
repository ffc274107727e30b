"""A circle (group format) in sessions: slots and bookings name `group_id` and include the
mentor and every active member; an offboarded member leaves the circle's future sessions
while the circle meets on.

Matching does not give matches a `group_id` on this branch yet (the formats issue does), so
the circle's three matches are written into sessions' own match projection, exactly as
its `match.*` consumer would store them; everything else goes through the gateway."""

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx

from tests.helpers import eventually
from tests.matchmaking import put_employee
from tests.sessions.support import set_availability, weekdays


async def test_circle_slots_booking_and_a_member_leaving(
    api: httpx.AsyncClient,
    org: tuple[str, dict[str, str]],
    service_db: Callable[[str], Awaitable[asyncpg.Connection]],
) -> None:
    org_id, key = org
    group_id, program_id = uuid.uuid4(), uuid.uuid4()
    for person, zone in (
        ("G-M", "Europe/London"),
        ("G-1", "Europe/Berlin"),
        ("G-2", "America/New_York"),
        ("G-3", "UTC"),
    ):
        await put_employee(api, key, person, zone)
    db = await service_db("sessions")
    try:
        await db.executemany(
            "INSERT INTO match (id, org_id, program_id, group_id, mentor_external_id,"
            " mentee_external_id, status, version) VALUES ($1, $2, $3, $4, 'G-M', $5, $6, 2)",
            [
                (uuid.uuid4(), uuid.UUID(org_id), program_id, group_id, mentee, status)
                for mentee, status in (("G-1", "active"), ("G-2", "active"), ("G-3", "declined"))
            ],
        )
    finally:
        await db.close()
    await set_availability(api, key, "G-M", {"weekly": weekdays("09:00", "17:00")})
    await set_availability(api, key, "G-1", {"weekly": weekdays("09:00", "17:00")})
    await set_availability(api, key, "G-2", {"weekly": weekdays("09:00", "17:00")})

    # London 09-17 (UTC+0), Berlin 09-17 (08-16 UTC), New York 09-17 (14-22 UTC) in
    # January: the circle shares 14:00-16:00 UTC.
    slots = await api.get(
        f"/v1/groups/{group_id}/slots",
        params={
            "from": "2027-01-11T00:00:00Z",
            "to": "2027-01-12T00:00:00Z",
            "duration": 60,
            "step": 60,
        },
        headers=key,
    )
    assert slots.status_code == 200, slots.text
    assert [s["starts_at"][11:16] for s in slots.json()["items"]] == ["14:00", "15:00"]

    booked = await api.post(
        "/v1/sessions",
        json={
            "group_id": str(group_id),
            "starts_at": "2027-01-11T14:00:00Z",
            "duration_minutes": 60,
            "rrule": "FREQ=WEEKLY;COUNT=3",
        },
        headers=key,
    )
    assert booked.status_code == 201, booked.text
    session = booked.json()
    assert session["group_id"] == str(group_id) and session["match_id"] is None
    assert sorted((p["employee_external_id"], p["role"]) for p in session["participants"]) == [
        ("G-1", "member"),
        ("G-2", "member"),
        ("G-M", "mentor"),
    ]  # the member whose match was declined is not in it

    # G-1 is offboarded: they leave the circle's sessions, which go on for the others.
    assert (await api.delete("/v1/employees/G-1", headers=key)).status_code == 200

    async def left() -> Any:
        body = (await api.get(f"/v1/sessions/{session['id']}", headers=key)).json()
        active = {p["employee_external_id"]: p["active"] for p in body["participants"]}
        return body if active["G-1"] is False else None

    after = await eventually(left)
    assert after["status"] == "scheduled"
    assert {o["status"] for o in after["occurrences"]} == {"scheduled"}
