"""Setting up a program with real matches through the gateway (employees, program,
enrollments, `POST /v1/matches`, accept), for the tracks, agreements and outcomes tests."""

from typing import Any

import httpx

from tests.helpers import eventually

Key = dict[str, str]


async def employees(api: httpx.AsyncClient, key: Key, records: list[dict[str, Any]]) -> None:
    """Bulk-sync employee records; every one must be accepted."""
    answer = await api.post("/v1/employees/bulk", json={"employees": records}, headers=key)
    assert answer.status_code == 200, answer.text
    assert all(r["status"] != "error" for r in answer.json()["results"]), answer.text


async def program(api: httpx.AsyncClient, key: Key, **fields: Any) -> str:
    """A new open program; its id."""
    body = {"name": "Grow", "status": "open", "max_mentees_per_mentor": 5, **fields}
    answer = await api.post("/v1/programs", json=body, headers=key)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def enrol(
    api: httpx.AsyncClient, key: Key, program_id: str, external_id: str, role: str
) -> str:
    """Enrol an employee; the enrollment id."""
    body = {"employee_external_id": external_id, "role": role, "capacity": 5}
    if role == "mentee":
        body.pop("capacity")
    answer = await api.post(f"/v1/programs/{program_id}/enrollments", json=body, headers=key)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def active_match(
    api: httpx.AsyncClient, key: Key, program_id: str, mentee: str, mentor: str
) -> str:
    """A match proposed and accepted through the gateway; its id."""
    body = {
        "program_id": program_id,
        "mentee_enrollment_id": mentee,
        "mentor_enrollment_id": mentor,
    }

    async def propose() -> httpx.Response | None:
        # Matching may not have projected the new enrollments yet (404 until it has).
        answer = await api.post("/v1/matches", json=body, headers=key)
        return None if answer.status_code == 404 else answer

    created = await eventually(propose)
    assert created is not None and created.status_code == 201, created and created.text
    match_id = str(created.json()["id"])
    accepted = await api.post(f"/v1/matches/{match_id}/accept", headers=key)
    assert accepted.status_code == 200, accepted.text
    return match_id


async def get_when_ready(api: httpx.AsyncClient, key: Key, path: str) -> dict[str, Any]:
    """GET a path until it answers 200 (a projection catching up); its body."""

    async def probe() -> dict[str, Any] | None:
        answer = await api.get(path, headers=key)
        return answer.json() if answer.status_code == 200 else None

    body = await eventually(probe)
    assert body is not None
    return body
