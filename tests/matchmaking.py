"""Reusable through-the-gateway set-ups: "an active match between two people" (employees,
a program, both enrollments, `POST /v1/matches`, accept), as a real client would do it."""

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.helpers import eventually


@dataclass(frozen=True)
class ActiveMatch:
    """An accepted match and who is in it."""

    match_id: str
    program_id: str
    mentor: str  # external ids
    mentee: str
    mentor_enrollment_id: str
    mentee_enrollment_id: str


async def put_employee(
    api: httpx.AsyncClient, key: dict[str, str], external_id: str, time_zone: str = "UTC"
) -> None:
    """Create (or update) an employee in profiles."""
    response = await api.put(
        f"/v1/employees/{external_id}",
        json={"email": f"{external_id.lower()}@example.com", "time_zone": time_zone,
              "display_name": external_id, "languages": ["en"]},
        headers=key,
    )  # fmt: skip
    assert response.status_code in (200, 201), response.text


async def create_program(api: httpx.AsyncClient, key: dict[str, str], **extra: Any) -> str:
    """An open one-to-one program with no department rule; returns its id."""
    body = {"name": f"P {uuid.uuid4().hex[:6]}", "status": "open", "max_mentees_per_mentor": 5,
            "criteria": {"department_rule": "any"}, **extra}  # fmt: skip
    response = await api.post("/v1/programs", json=body, headers=key)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def enrol(
    api: httpx.AsyncClient, key: dict[str, str], program_id: str, external_id: str, role: str
) -> str:
    """Enrol an employee as mentor or mentee; returns the enrollment id."""
    body: dict[str, Any] = {"employee_external_id": external_id, "role": role,
                            "skills": [{"name": "Python", "level": 5 if role == "mentor" else 1}],
                            "languages": ["en"]}  # fmt: skip
    if role == "mentor":
        body["capacity"] = 5
    response = await api.post(f"/v1/programs/{program_id}/enrollments", json=body, headers=key)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def active_match(
    api: httpx.AsyncClient,
    key: dict[str, str],
    mentor: str,
    mentee: str,
    *,
    mentor_zone: str = "UTC",
    mentee_zone: str = "UTC",
    program_id: str | None = None,
    mentor_enrollment_id: str | None = None,
) -> ActiveMatch:
    """Employees `mentor` and `mentee` (created in their zones), enrolled in a program (a
    new one unless given) and matched; the match is accepted (active) when this returns.
    Pass the mentor's `mentor_enrollment_id` (and `program_id`) to give them another mentee."""
    if mentor_enrollment_id is None:
        await put_employee(api, key, mentor, mentor_zone)
    await put_employee(api, key, mentee, mentee_zone)
    program_id = program_id or await create_program(api, key)
    mentor_enrollment = mentor_enrollment_id or await enrol(api, key, program_id, mentor, "mentor")
    mentee_enrollment = await enrol(api, key, program_id, mentee, "mentee")
    body = {"program_id": program_id, "mentee_enrollment_id": mentee_enrollment,
            "mentor_enrollment_id": mentor_enrollment}  # fmt: skip

    async def created() -> Any:
        # Matching learns of people and enrollments from events: until both arrived it
        # answers 404 (no enrollment) or 409 (the person is not known as active yet).
        response = await api.post("/v1/matches", json=body, headers=key)
        if response.status_code == 404 or "is not active" in response.text:
            return None
        return response

    response: httpx.Response = await eventually(created)
    assert response.status_code == 201, response.text
    match_id = str(response.json()["id"])
    accepted = await api.post(f"/v1/matches/{match_id}/accept", headers=key)
    assert accepted.status_code == 200 and accepted.json()["status"] == "active", accepted.text
    return ActiveMatch(match_id, program_id, mentor, mentee, mentor_enrollment, mentee_enrollment)
