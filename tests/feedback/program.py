"""A small program through the public API: employees, a program, enrollments and active
matches (profiles and matching, over the real broker)."""

from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.helpers import eventually


@dataclass
class Program:
    """Ids of what `start_program` set up."""

    id: str
    enrollments: dict[str, str] = field(default_factory=dict)  # external id -> enrollment
    matches: dict[str, dict[str, Any]] = field(default_factory=dict)  # mentee -> match


async def start_program(
    api: httpx.AsyncClient,
    key: dict[str, str],
    mentors: list[str],
    mentees: list[str],
    pairs: list[tuple[str, str]],
) -> Program:
    """Enroll everyone, then match and accept each (mentee, mentor) pair."""
    people = [
        {"external_id": x, "email": f"{x.lower()}@example.com", "time_zone": "Europe/London",
         "languages": ["en"], "hire_date": "2015-01-01"}
        for x in mentors + mentees
    ]  # fmt: skip
    synced = await api.post("/v1/employees/bulk", json={"employees": people}, headers=key)
    assert synced.status_code == 200, synced.text
    created = await api.post(
        "/v1/programs",
        json={"name": "Grow", "status": "open", "max_mentees_per_mentor": 2,
              "criteria": {"department_rule": "any"}},
        headers=key,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    program = Program(created.json()["id"])
    for external_id in mentors + mentees:
        role = "mentor" if external_id in mentors else "mentee"
        enrolled = await api.post(
            f"/v1/programs/{program.id}/enrollments",
            json={"employee_external_id": external_id, "role": role, "languages": ["en"],
                  "skills": [{"name": "Python", "level": 5 if role == "mentor" else 1}]},
            headers=key,
        )  # fmt: skip
        assert enrolled.status_code == 201, enrolled.text
        program.enrollments[external_id] = enrolled.json()["id"]
    for mentee, mentor in pairs:
        body = {
            "program_id": program.id,
            "mentee_enrollment_id": program.enrollments[mentee],
            "mentor_enrollment_id": program.enrollments[mentor],
        }
        match = await _retry_post(api, "/v1/matches", body, key)
        accepted = await api.post(f"/v1/matches/{match['id']}/accept", headers=key)
        assert accepted.status_code == 200, accepted.text
        program.matches[mentee] = accepted.json()
    return program


async def _retry_post(
    api: httpx.AsyncClient, path: str, body: dict[str, Any], key: dict[str, str]
) -> dict[str, Any]:
    # Matching may not have projected the new enrollments yet: it answers 404 meanwhile.
    async def created() -> httpx.Response | None:
        response = await api.post(path, json=body, headers=key)
        assert response.status_code in {201, 404}, response.text
        return response if response.status_code == 201 else None

    response = await eventually(created)
    assert response is not None
    result: dict[str, Any] = response.json()
    return result
