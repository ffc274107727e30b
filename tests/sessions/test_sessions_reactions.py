"""Reacting to other services through the real broker: an offboarding cancels the
person's future sessions only (completed and past ones stay), once, although both
`person.deactivated` and the `match.ended` it causes arrive; a match ended likewise."""

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import asyncpg
import httpx

from tests.helpers import eventually
from tests.matchmaking import active_match
from tests.sessions.support import iso, soon

CANCELLED = "mentorbus.session.cancelled.v1"


async def _cancelled_events(db: asyncpg.Connection, session_id: str) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM outbox_message WHERE event_type = $1 AND key = $2",
            CANCELLED,
            session_id,
        )
    )


async def test_offboarding_cancels_future_sessions_only_once(
    api: httpx.AsyncClient,
    org: tuple[str, dict[str, str]],
    service_db: Callable[[str], Awaitable[asyncpg.Connection]],
) -> None:
    org_id, key = org
    pair = await active_match(api, key, "R-M", "R-E")

    async def book(starts_at: str, **extra: object) -> str:
        body = {"match_id": pair.match_id, "starts_at": starts_at, "duration_minutes": 30}
        response = await api.post("/v1/sessions", json={**body, **extra}, headers=key)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    done = await book(iso(soon(-3 * 24 * 60)))
    assert (await api.post(f"/v1/sessions/{done}/complete", headers=key)).status_code == 200
    past = await book(iso(soon(-2 * 24 * 60)))  # not marked: in the past, it stays as it was
    series_start = soon(24 * 60)
    series = await book(iso(series_start - timedelta(days=14)), rrule="FREQ=WEEKLY;COUNT=4")
    ahead = await book(iso(soon(10 * 24 * 60)))

    assert (await api.delete("/v1/employees/R-E", headers=key)).status_code == 200

    async def cancelled() -> bool:
        response = await api.get(f"/v1/sessions/{ahead}", headers=key)
        return bool(response.json()["status"] == "cancelled")

    await eventually(cancelled)
    db = await service_db("sessions")
    try:
        # Both causes have reached sessions: the person is inactive and the match ended.
        async def both_seen() -> bool:
            person = await db.fetchval(
                "SELECT employment_status FROM person WHERE org_id = $1 AND external_id = 'R-E'",
                uuid.UUID(org_id),
            )
            match = await db.fetchval(
                "SELECT status FROM match WHERE id = $1", uuid.UUID(pair.match_id)
            )
            return person == "inactive" and match == "ended"

        await eventually(both_seen)
        for session_id in (ahead, series):
            assert await _cancelled_events(db, session_id) == 1
        for session_id in (done, past):
            assert await _cancelled_events(db, session_id) == 0
    finally:
        await db.close()

    completed = (await api.get(f"/v1/sessions/{done}", headers=key)).json()
    assert completed["status"] == "completed"
    assert (await api.get(f"/v1/sessions/{past}", headers=key)).json()["status"] == "scheduled"
    statuses = [
        o["status"]
        for o in (await api.get(f"/v1/sessions/{series}", headers=key)).json()["occurrences"]
    ]
    # Two weeks ago and last week stay; tomorrow's and next week's are cancelled.
    assert statuses == ["scheduled", "scheduled", "cancelled", "cancelled"]


async def test_match_ended_cancels_its_future_sessions(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    _, key = org
    pair = await active_match(api, key, "Q-M", "Q-E")
    booked = await api.post(
        "/v1/sessions",
        json={
            "match_id": pair.match_id,
            "starts_at": iso(soon(7 * 24 * 60)),
            "duration_minutes": 45,
        },
        headers=key,
    )
    assert booked.status_code == 201, booked.text
    ended = await api.post(
        f"/v1/matches/{pair.match_id}/end", json={"reason": "moved on"}, headers=key
    )
    assert ended.status_code == 200, ended.text

    async def cancelled() -> dict[str, object] | None:
        body = (await api.get(f"/v1/sessions/{booked.json()['id']}", headers=key)).json()
        return body if body["status"] == "cancelled" else None

    session = await eventually(cancelled)
    assert session["occurrences"][0]["reason"] == "match ended"  # type: ignore[index]
    # A session cannot be booked for an ended match.
    refused = await api.post(
        "/v1/sessions",
        json={
            "match_id": pair.match_id,
            "starts_at": iso(soon(8 * 24 * 60)),
            "duration_minutes": 45,
        },
        headers=key,
    )
    assert refused.status_code == 409


async def test_a_bulk_offboarding_cancels_the_sessions_of_each_leaver(
    api: httpx.AsyncClient,
    org: tuple[str, dict[str, str]],
    service_db: Callable[[str], Awaitable[asyncpg.Connection]],
) -> None:
    _, key = org
    pairs = [await active_match(api, key, f"BO-M{i}", f"BO-E{i}") for i in range(2)]
    booked = []
    for pair in pairs:
        body = {"match_id": pair.match_id, "starts_at": iso(soon(5 * 24 * 60)),
                "duration_minutes": 30}  # fmt: skip
        response = await api.post("/v1/sessions", json=body, headers=key)
        assert response.status_code == 201, response.text
        booked.append(response.json()["id"])
    bystanders = [{"external_id": f"BO-X{i}", "email": f"bo-x{i}@acme.com"} for i in range(50)]
    created = await api.post("/v1/employees/bulk", json={"employees": bystanders}, headers=key)
    assert created.status_code == 200, created.text
    # One request, so the deactivations travel together: the consumer takes them as a batch.
    leaving = [
        {"external_id": e, "email": f"{e.lower()}@acme.com", "employment_status": "inactive"}
        for e in [p.mentee for p in pairs] + [b["external_id"] for b in bystanders]
    ]
    gone = await api.post("/v1/employees/bulk", json={"employees": leaving}, headers=key)
    assert gone.status_code == 200, gone.text
    assert {r["status"] for r in gone.json()["results"]} == {"updated"}

    async def all_cancelled() -> bool:
        found = [(await api.get(f"/v1/sessions/{s}", headers=key)).json() for s in booked]
        return all(s["status"] == "cancelled" for s in found)

    # Cancelled once each, by whichever arrives first of the offboarding (`people_offboarded`)
    # and the match's end it causes; every leaver is inactive in sessions' projection.
    await eventually(all_cancelled)
    db = await service_db("sessions")
    try:
        inactive = await db.fetchval(
            "SELECT count(*) FROM person WHERE external_id = ANY($1)"
            " AND employment_status = 'inactive'",
            [r["external_id"] for r in leaving],
        )
        assert inactive == len(leaving)
        assert [await _cancelled_events(db, s) for s in booked] == [1, 1]
    finally:
        await db.close()
