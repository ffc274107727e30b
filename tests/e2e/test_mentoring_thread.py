"""A whole mentoring program through the public API, across services and the real broker:
employees synced in bulk (profiles), a program and its enrollments (profiles), suggestions
and a match (matching, from its own projection), and an offboarding that reaches matching.
Nothing here talks to a service directly or feeds events by hand."""

from typing import Any

import httpx

from tests.helpers import eventually

PEOPLE = [
    {"external_id": "M-1", "department": "Engineering", "time_zone": "Europe/London",
     "languages": ["en"], "hire_date": "2012-01-01"},
    {"external_id": "M-2", "department": "Finance", "time_zone": "Europe/Berlin",
     "languages": ["en", "de"], "hire_date": "2014-06-01"},
    {"external_id": "E-1", "department": "Engineering", "time_zone": "Europe/Paris",
     "languages": ["en", "fr"], "hire_date": "2023-03-01", "manager_external_id": "M-1"},
]  # fmt: skip


async def test_hris_sync_to_match_and_offboarding(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    _, key = org
    synced = await api.post("/v1/employees/bulk", json={"employees": PEOPLE}, headers=key)
    assert synced.status_code == 200, synced.text
    assert [r["status"] for r in synced.json()["results"]] == ["created"] * 3

    program = await api.post(
        "/v1/programs",
        json={"name": "Grow", "status": "open", "max_mentees_per_mentor": 2,
              "criteria": {"department_rule": "any"}},
        headers=key,
    )  # fmt: skip
    assert program.status_code == 201, program.text
    program_id = program.json()["id"]
    enroll = f"/v1/programs/{program_id}/enrollments"

    async def enrol(body: dict[str, Any]) -> str:
        response = await api.post(enroll, json=body, headers=key)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    mentor_1 = await enrol(
        {
            "employee_external_id": "M-1",
            "role": "mentor",
            "skills": [{"name": "Python", "level": 5}],
            "languages": ["en"],
        }
    )
    mentor_2 = await enrol(
        {
            "employee_external_id": "M-2",
            "role": "mentor",
            "skills": [{"name": "Python", "level": 4}, {"name": "SQL", "level": 5}],
            "languages": ["en"],
        }
    )
    mentee = await enrol({"employee_external_id": "E-1", "role": "mentee",
                          "skills": [{"name": "python", "level": 1}],
                          "goals": ["get better at SQL and python"],
                          "languages": ["en"]})  # fmt: skip
    suggestions = f"{enroll}/{mentee}/suggestions"

    async def suggested() -> list[dict[str, Any]]:
        response = await api.get(suggestions, headers=key)
        if response.status_code != 200:
            return []
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    # M-1 is E-1's own manager: a hard rule keeps them apart, so only M-2 is suggested.
    items = await eventually(suggested)
    assert [i["mentor_enrollment_id"] for i in items] == [mentor_2]
    assert items[0]["breakdown"] and items[0]["reasons"]
    assert mentor_1 not in {i["mentor_enrollment_id"] for i in items}

    match = await api.post(
        "/v1/matches",
        json={"program_id": program_id, "mentee_enrollment_id": mentee,
              "mentor_enrollment_id": mentor_2},
        headers=key,
    )  # fmt: skip
    assert match.status_code == 201, match.text
    assert match.json()["status"] == "proposed"
    accepted = await api.post(f"/v1/matches/{match.json()['id']}/accept", headers=key)
    assert accepted.status_code == 200 and accepted.json()["status"] == "active"

    # Offboarding the mentor in profiles withdraws the enrollment and ends the match.
    assert (await api.delete("/v1/employees/M-2", headers=key)).status_code == 200

    async def ended() -> bool:
        response = await api.get(f"/v1/matches/{match.json()['id']}", headers=key)
        return bool(response.json()["status"] == "ended")

    await eventually(ended)
    await eventually(lambda: _no_suggestions(api, suggestions, key))


async def _no_suggestions(api: httpx.AsyncClient, path: str, key: dict[str, str]) -> bool:
    response = await api.get(path, headers=key)
    return response.status_code == 200 and response.json()["items"] == []
