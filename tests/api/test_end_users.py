"""End users (JWT, `role: member`) see and act on only what is theirs: another person's
resource is a 404, an organization-wide list or operation a 403; `role: admin` sees the
organization."""

import httpx

from tests.api.support import Program, new_program
from tests.helpers import TokenIssuer

Org = tuple[str, dict[str, str]]


def member(idp: TokenIssuer, program: Program, person: str) -> dict[str, str]:
    return idp.headers(program.org_id, person, role="member")


async def test_employees(api: httpx.AsyncClient, org: Org, identity_provider: TokenIssuer) -> None:
    program = await new_program(api, org)
    me = member(identity_provider, program, program.mentee_person)
    own = await api.get(f"/v1/employees/{program.mentee_person}", headers=me)
    assert own.status_code == 200 and own.json()["external_id"] == program.mentee_person
    assert (await api.get(f"/v1/employees/{program.other_person}", headers=me)).status_code == 404
    assert (await api.get("/v1/employees", headers=me)).status_code == 403
    put = await api.put(f"/v1/employees/{program.mentee_person}", json={}, headers=me)
    assert put.status_code == 403
    assert (await api.get("/scim/v2/Users", headers=me)).status_code == 403
    admin = identity_provider.headers(program.org_id, "hr-1", role="admin")
    assert (await api.get("/v1/employees", headers=admin)).status_code == 200


async def test_enrollments(
    api: httpx.AsyncClient, org: Org, identity_provider: TokenIssuer
) -> None:
    program = await new_program(api, org)
    me = member(identity_provider, program, program.mentee_person)
    base = f"/v1/programs/{program.id}/enrollments"
    listed = await api.get(base, headers=me)
    assert listed.status_code == 200
    assert [e["id"] for e in listed.json()["items"]] == [program.mentee]
    assert (await api.get(f"{base}/{program.mentee}", headers=me)).status_code == 200
    assert (await api.get(f"{base}/{program.other_mentee}", headers=me)).status_code == 404
    patched = await api.patch(f"{base}/{program.other_mentee}", json={"bio": "x"}, headers=me)
    assert patched.status_code == 404
    mine = await api.patch(f"{base}/{program.mentee}", json={"bio": "me"}, headers=me)
    assert mine.status_code == 200 and mine.json()["bio"] == "me"
    someone_else = {"employee_external_id": program.other_person, "role": "mentor"}
    assert (await api.post(base, json=someone_else, headers=me)).status_code == 403
    # Programs: members read them (to enroll), only the organization changes them.
    assert (await api.get(f"/v1/programs/{program.id}", headers=me)).status_code == 200
    created = await api.post("/v1/programs", json={"name": "mine"}, headers=me)
    assert created.status_code == 403


async def test_matches_and_suggestions(
    api: httpx.AsyncClient, org: Org, identity_provider: TokenIssuer
) -> None:
    program = await new_program(api, org)
    mentee = member(identity_provider, program, program.mentee_person)
    mentor = member(identity_provider, program, program.mentor_person)
    other = member(identity_provider, program, program.other_person)
    proposal = {
        "program_id": program.id,
        "mentee_enrollment_id": program.mentee,
        "mentor_enrollment_id": program.mentor,
    }
    foreign = {**proposal, "mentee_enrollment_id": program.other_mentee}
    assert (await api.post("/v1/matches", json=foreign, headers=mentee)).status_code == 403
    created = await api.post("/v1/matches", json=proposal, headers=mentee)
    assert created.status_code == 201, created.text
    match_id = created.json()["id"]

    assert (await api.get(f"/v1/matches/{match_id}", headers=other)).status_code == 404
    assert (await api.get("/v1/matches", headers=other)).json()["items"] == []
    theirs = (await api.get("/v1/matches", headers=mentor)).json()["items"]
    assert [m["id"] for m in theirs] == [match_id]
    assert (await api.post(f"/v1/matches/{match_id}/accept", headers=other)).status_code == 404
    assert (await api.post(f"/v1/matches/{match_id}/accept", headers=mentee)).status_code == 403
    accepted = await api.post(f"/v1/matches/{match_id}/accept", headers=mentor)
    assert accepted.status_code == 200 and accepted.json()["status"] == "active"

    suggestions = f"/v1/programs/{program.id}/enrollments/{{}}/suggestions"
    own = await api.get(suggestions.format(program.other_mentee), headers=other)
    assert own.status_code == 200
    assert (await api.get(suggestions.format(program.mentee), headers=other)).status_code == 404


async def test_matching_runs_are_organization_wide(
    api: httpx.AsyncClient, org: Org, identity_provider: TokenIssuer
) -> None:
    program = await new_program(api, org)
    me = member(identity_provider, program, program.mentee_person)
    runs = f"/v1/programs/{program.id}/matching-runs"
    assert (await api.get(runs, headers=me)).status_code == 403
    assert (await api.post(runs, json={"objective": "max_score"}, headers=me)).status_code == 403
