"""Availability and slot search through the gateway: 422s naming fields, member rules,
and slots right across the March weeks when only New York has switched to summer time."""

from collections import defaultdict
from typing import Any

import httpx

from devstack.stack import Stack
from tests.helpers import member
from tests.matchmaking import active_match, put_employee
from tests.sessions.support import set_availability, utc, weekdays


async def test_availability_round_trip_and_422s_name_fields(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]], stack: Stack
) -> None:
    org_id, key = org
    await put_employee(api, key, "A-1", "Europe/Berlin")
    body = {
        "weekly": [
            {"weekday": 0, "start": "09:00", "end": "12:30"},
            {"weekday": 0, "start": "12:30", "end": "14:00"},
        ],
        "exceptions": [
            {"date": "2027-03-10", "available": False},
            {"date": "2027-03-13", "available": True, "start": "10:00", "end": "11:00"},
        ],
    }
    put = await set_availability(api, key, "A-1", body)
    assert put.json()["time_zone"] == "Europe/Berlin"  # the person's zone by default
    got = await api.get("/v1/employees/A-1/availability", headers=key)
    assert got.status_code == 200
    assert got.json()["weekly"] == [
        {"weekday": 0, "start": "09:00", "end": "12:30"},
        {"weekday": 0, "start": "12:30", "end": "14:00"},
    ]
    assert got.json()["exceptions"][0] == {
        "date": "2027-03-10",
        "available": False,
        "start": None,
        "end": None,
    }

    async def fields(bad: dict[str, Any]) -> list[str]:
        response = await api.put("/v1/employees/A-1/availability", json=bad, headers=key)
        assert response.status_code == 422, response.text
        return [e["field"] for e in response.json()["errors"]]

    assert await fields({"weekly": [{"weekday": 7, "start": "09:00", "end": "10:00"}]}) == [
        "weekly.0.weekday"
    ]
    assert await fields({"weekly": [{"weekday": 1, "start": "10:00", "end": "09:00"}]}) == [
        "weekly.0.end"
    ]
    assert await fields({"time_zone": "Mars/Olympus", "weekly": []}) == ["time_zone"]
    overlapping = {
        "weekly": [
            {"weekday": 2, "start": "09:00", "end": "11:00"},
            {"weekday": 2, "start": "10:30", "end": "12:00"},
        ]
    }
    assert await fields(overlapping) == ["weekly.1"]
    assert await fields({"exceptions": [{"date": "2027-01-01", "available": True}]}) == [
        "exceptions.0.start",
        "exceptions.0.end",
    ]

    # A member sees their own availability only; someone else's is a 404.
    await put_employee(api, key, "A-2", "UTC")
    async with httpx.AsyncClient(base_url=stack.url(), timeout=15) as direct:
        own = await direct.get("/v1/employees/A-1/availability", headers=member(org_id, "A-1"))
        assert own.status_code == 200
        other = await direct.get("/v1/employees/A-1/availability", headers=member(org_id, "A-2"))
        assert other.status_code == 404


async def test_slots_across_the_march_weeks_new_york_and_berlin(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]], stack: Stack
) -> None:
    org_id, key = org
    pair = await active_match(
        api, key, "NY-1", "BE-1", mentor_zone="America/New_York", mentee_zone="Europe/Berlin"
    )
    await set_availability(api, key, "NY-1", {"weekly": weekdays("09:00", "12:00")})
    await set_availability(api, key, "BE-1", {"weekly": weekdays("14:00", "18:00")})
    # The mentor's other match has a session on Tuesday 16 March, 13:00-14:00 UTC: that
    # hour is gone from this pair's slots too.
    other = await active_match(
        api,
        key,
        "NY-1",
        "BE-2",
        program_id=pair.program_id,
        mentor_enrollment_id=pair.mentor_enrollment_id,
    )
    booked = await api.post(
        "/v1/sessions",
        json={
            "match_id": other.match_id,
            "starts_at": "2027-03-16T13:00:00Z",
            "duration_minutes": 60,
        },
        headers=key,
    )
    assert booked.status_code == 201, booked.text

    response = await api.get(
        f"/v1/matches/{pair.match_id}/slots",
        params={
            "from": "2027-03-08T00:00:00Z",
            "to": "2027-04-03T00:00:00Z",
            "duration": 60,
            "step": 60,
        },
        headers=key,
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    starts = [utc(i["starts_at"]) for i in items]
    assert starts == sorted(starts)
    assert all((utc(i["ends_at"]) - utc(i["starts_at"])).total_seconds() == 3600 for i in items)
    by_day: dict[str, list[int]] = defaultdict(list)
    for at in starts:
        by_day[at.date().isoformat()].append(at.hour)
    # Both on winter time: New York 09-12 EST = 14-17 UTC, Berlin 14-18 CET = 13-17 UTC.
    assert by_day["2027-03-08"] == [14, 15, 16]
    # 14 March: New York switched, Berlin not yet: 13-16 UTC and 13-17 UTC.
    assert by_day["2027-03-15"] == [13, 14, 15]
    assert by_day["2027-03-16"] == [14, 15]  # 13:00 is taken by the other match's session
    # 28 March: Berlin switched too: 13-16 UTC and 12-16 UTC.
    assert by_day["2027-03-29"] == [13, 14, 15]
    assert "2027-03-13" not in by_day and "2027-03-14" not in by_day  # weekend

    too_long = await api.get(
        f"/v1/matches/{pair.match_id}/slots",
        params={"from": "2027-01-01T00:00:00Z", "to": "2027-06-01T00:00:00Z", "duration": 60},
        headers=key,
    )
    assert too_long.status_code == 422
    assert [e["field"] for e in too_long.json()["errors"]] == ["to"]
    naive = await api.get(
        f"/v1/matches/{pair.match_id}/slots",
        params={"from": "2027-01-01T00:00:00", "to": "2027-01-02T00:00:00Z", "duration": 60},
        headers=key,
    )
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "from"

    # A member outside the match does not see it.
    async with httpx.AsyncClient(base_url=stack.url(), timeout=15) as direct:
        window = "from=2027-03-08T00:00:00Z&to=2027-03-09T00:00:00Z"
        path = f"/v1/matches/{pair.match_id}/slots?{window}"
        assert (await direct.get(path, headers=member(org_id, "BE-1"))).status_code == 200
        assert (await direct.get(path, headers=member(org_id, "BE-2"))).status_code == 404
