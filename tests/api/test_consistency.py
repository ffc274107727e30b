"""Read-your-writes across services: an id a 2xx answer returned is usable at once on every
path, though matching learns of it through events (architecture: "Consistency across
services"); an id that never existed is still a 404."""

import uuid

import httpx

from tests.api.support import new_program


async def test_enrollment_proposed_at_once_is_a_201(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    program = await new_program(api, org)
    body = {
        "program_id": program.id,
        "mentee_enrollment_id": program.mentee,
        "mentor_enrollment_id": program.mentor,
    }
    response = await api.post("/v1/matches", json=body, headers=program.key)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "proposed"


async def test_suggestions_at_once_after_enrolling(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    program = await new_program(api, org)
    url = f"/v1/programs/{program.id}/enrollments/{program.other_mentee}/suggestions"
    response = await api.get(url, headers=program.key)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None


async def test_program_given_a_run_at_once_is_a_202(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    _, key = org
    created = await api.post("/v1/programs", json={"name": "Now", "status": "open"}, headers=key)
    assert created.status_code == 201
    run = await api.post(
        f"/v1/programs/{created.json()['id']}/matching-runs",
        json={"objective": "max_score"},
        headers=key,
    )
    assert run.status_code == 202, run.text


async def test_an_id_that_never_existed_is_still_a_404(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    _, key = org
    run = await api.post(
        f"/v1/programs/{uuid.uuid4()}/matching-runs", json={"objective": "max_score"}, headers=key
    )
    assert run.status_code == 404
    assert run.headers["content-type"] == "application/problem+json"
