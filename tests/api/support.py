"""A small mentoring program set up through the public API, as an integrator would."""

import uuid
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Program:
    """A program with one mentor and two mentees, each an employee."""

    org_id: str
    key: dict[str, str]
    id: str
    mentor: str  # enrollment ids
    mentee: str
    other_mentee: str
    mentor_person: str  # employee external ids
    mentee_person: str
    other_person: str


async def employee(api: httpx.AsyncClient, key: dict[str, str], external_id: str) -> None:
    """An active employee."""
    body = {
        "email": f"{external_id.lower()}@acme.com",
        "time_zone": "Europe/London",
        "languages": ["en"],
        "department": "Engineering",
    }
    response = await api.put(f"/v1/employees/{external_id}", json=body, headers=key)
    assert response.status_code in (200, 201), response.text


async def enroll(
    api: httpx.AsyncClient, key: dict[str, str], program_id: str, external_id: str, role: str
) -> str:
    """Enroll an employee; the new enrollment's id."""
    body = {
        "employee_external_id": external_id,
        "role": role,
        "skills": [{"name": "python", "level": 4 if role == "mentor" else 2}],
        "goals": ["learn python"],
        "languages": ["en"],
        **({"capacity": 2} if role == "mentor" else {}),
    }
    response = await api.post(f"/v1/programs/{program_id}/enrollments", json=body, headers=key)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def new_program(api: httpx.AsyncClient, org: tuple[str, dict[str, str]]) -> Program:
    """Three employees and an open program with them enrolled, all at once (nothing waits
    for matching to catch up)."""
    org_id, key = org
    tag = uuid.uuid4().hex[:6]
    people = [f"M-{tag}", f"A-{tag}", f"B-{tag}"]
    for person in people:
        await employee(api, key, person)
    created = await api.post(
        "/v1/programs", json={"name": f"P {tag}", "status": "open"}, headers=key
    )
    assert created.status_code == 201, created.text
    program_id = created.json()["id"]
    mentor = await enroll(api, key, program_id, people[0], "mentor")
    mentee = await enroll(api, key, program_id, people[1], "mentee")
    other = await enroll(api, key, program_id, people[2], "mentee")
    return Program(org_id, key, program_id, mentor, mentee, other, *people)
