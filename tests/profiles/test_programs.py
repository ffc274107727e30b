"""Programs and enrollments through the gateway: the contract fields, validation,
ETags, pagination, tenant isolation and their events in the outbox."""

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx

from tests.helpers import create_org
from tests.profiles.support import outbox_events

Connect = Callable[[str], Awaitable[asyncpg.Connection]]
Org = tuple[str, dict[str, str]]

CRITERIA = {
    "weights": {"skills": 0.5, "goals": 0.2, "department": 0.1, "languages": 0.2},
    "department_rule": "different",
    "seniority_gap": {"min_years": 2, "max_years": 15},
    "require_shared_language": True,
    "max_time_zone_difference_hours": 4,
    "attribute_rules": [{"attribute": "location", "rule": "same", "weight": 0.5}],
}


def program(**fields: Any) -> dict[str, Any]:
    """A program body."""
    return {
        "name": "Engineering mentoring 2027",
        "description": "Pairs seniors with new joiners",
        "format": "one_to_one",
        "status": "open",
        "starts_on": "2027-01-10",
        "ends_on": "2027-06-30",
        "max_mentees_per_mentor": 3,
        "criteria": CRITERIA,
        **fields,
    }


async def people(api: httpx.AsyncClient, key: dict[str, str], *ids: str) -> None:
    """Active employees with these HRIS ids."""
    records = [{"external_id": i, "email": f"{i.lower()}@example.com"} for i in ids]
    answer = await api.post("/v1/employees/bulk", json={"employees": records}, headers=key)
    assert answer.status_code == 200, answer.text


async def test_program_lifecycle_with_etags_and_events(
    api: httpx.AsyncClient, org: Org, service_db: Connect
) -> None:
    _, key = org
    created = await api.post("/v1/programs", json=program(), headers=key)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["format"] == "one_to_one" and body["status"] == "open"
    assert body["starts_on"] == "2027-01-10" and body["max_mentees_per_mentor"] == 3
    assert body["criteria"]["department_rule"] == "different"
    assert body["criteria"]["weights"]["skills"] == 0.5
    assert body["criteria"]["weights"]["time_zone"] == 0.1  # a default filled in
    assert body["criteria"]["weights"]["preferences"] == 0.1
    assert created.headers["etag"] == '"1"'

    got = await api.get(f"/v1/programs/{body['id']}", headers=key)
    assert got.json() == body and got.headers["etag"] == '"1"'

    url = f"/v1/programs/{body['id']}"
    stale = await api.patch(url, json={"status": "active"}, headers={**key, "If-Match": '"5"'})
    assert stale.status_code == 412
    moved = await api.patch(url, json={"status": "active"}, headers={**key, "If-Match": '"1"'})
    assert moved.status_code == 200 and moved.json()["status"] == "active"
    assert moved.json()["version"] == 2 and moved.headers["etag"] == '"2"'
    same = await api.patch(url, json={"status": "active"}, headers=key)
    assert same.json()["version"] == 2  # nothing changed, nothing published
    criteria = {**CRITERIA, "department_rule": "same"}
    changed = await api.patch(url, json={"criteria": criteria, "name": "Renamed"}, headers=key)
    assert changed.json()["criteria"]["department_rule"] == "same"
    assert changed.json()["name"] == "Renamed" and changed.json()["version"] == 3

    closed = await api.patch(url, json={"status": "closed"}, headers=key)
    assert closed.json()["status"] == "closed"
    reopen = await api.patch(url, json={"status": "open"}, headers=key)
    assert reopen.status_code == 422 and reopen.json()["errors"][0]["field"] == "status"

    profiles = await service_db("profiles")
    try:
        published = await outbox_events(profiles, body["id"])
        assert [e["type"] for e in published] == [
            "mentorbus.program.created.v1",
            "mentorbus.program.updated.v1",
            "mentorbus.program.updated.v1",
            "mentorbus.program.updated.v1",
        ]
        assert published[0]["data"]["criteria"]["seniority_gap"]["min_years"] == 2
        assert published[0]["data"]["starts_on"] == "2027-01-10"
        assert published[2]["data"]["name"] == "Renamed"
        assert [e["data"]["version"] for e in published] == [1, 2, 3, 4]
    finally:
        await profiles.close()


async def test_program_bad_input(api: httpx.AsyncClient, org: Org) -> None:
    _, key = org
    cases = {
        "format": program(format="speed_dating"),
        "status": program(status="archived"),
        "max_mentees_per_mentor": program(max_mentees_per_mentor=0),
        "criteria.department_rule": program(criteria={"department_rule": "sideways"}),
        "criteria.weights.skills": program(criteria={"weights": {"skills": -1}}),
        "criteria.attribute_rules.0.rule": program(
            criteria={"attribute_rules": [{"attribute": "x", "rule": "maybe"}]}
        ),
        "criteria.bogus": program(criteria={"bogus": 1}),
        "name": program(name=""),
    }
    for field, body in cases.items():
        answer = await api.post("/v1/programs", json=body, headers=key)
        assert answer.status_code == 422, (field, answer.text)
        assert field in [e["field"] for e in answer.json()["errors"]], (field, answer.json())
    backwards = await api.post(
        "/v1/programs", json=program(starts_on="2027-02-01", ends_on="2027-01-01"), headers=key
    )
    assert backwards.status_code == 422
    created = (await api.post("/v1/programs", json=program(), headers=key)).json()
    patch = await api.patch(
        f"/v1/programs/{created['id']}", json={"ends_on": "2026-01-01"}, headers=key
    )
    assert patch.status_code == 422 and patch.json()["errors"][0]["field"] == "ends_on"
    null_name = await api.patch(f"/v1/programs/{created['id']}", json={"name": None}, headers=key)
    assert null_name.status_code == 422
    assert (await api.get("/v1/programs/not-a-uuid", headers=key)).status_code == 422


async def test_programs_paginate_and_filter(api: httpx.AsyncClient, org: Org) -> None:
    _, key = org
    ids = [
        (await api.post("/v1/programs", json=program(name=f"P{i}", status=s), headers=key)).json()[
            "id"
        ]
        for i, s in enumerate(["draft", "open", "open", "draft", "open"])
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/programs", params=params, headers=key)).json()
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids
    opened = (await api.get("/v1/programs", params={"status": "open"}, headers=key)).json()
    assert [p["id"] for p in opened["items"]] == [ids[1], ids[2], ids[4]]


async def test_enrollment_lifecycle(api: httpx.AsyncClient, org: Org, service_db: Connect) -> None:
    _, key = org
    await people(api, key, "M-1", "M-2")
    prog = (await api.post("/v1/programs", json=program(), headers=key)).json()
    base = f"/v1/programs/{prog['id']}/enrollments"
    mentor = {
        "employee_external_id": "M-1",
        "role": "mentor",
        "skills": [{"name": "Python", "level": 5}, {"name": "Leadership", "level": 3}],
        "goals": ["grow new leads"],
        "languages": ["en", "fr"],
        "preferences": {"preferred_mentee_department": "Sales"},
        "bio": "Twenty years of shipping.",
    }
    created = await api.post(base, json=mentor, headers=key)
    assert created.status_code == 201, created.text
    enrollment = created.json()
    assert enrollment["capacity"] == 3  # the program's max_mentees_per_mentor
    assert enrollment["program_id"] == prog["id"] and enrollment["status"] == "active"
    assert enrollment["skills"][0] == {"name": "Python", "level": 5}
    assert created.headers["etag"] == '"1"'

    duplicate = await api.post(base, json=mentor, headers=key)
    assert duplicate.status_code == 409

    url = f"{base}/{enrollment['id']}"
    got = await api.get(url, headers=key)
    assert got.json() == enrollment
    stale = await api.patch(url, json={"capacity": 1}, headers={**key, "If-Match": '"9"'})
    assert stale.status_code == 412
    patched = await api.patch(
        url, json={"capacity": 1, "goals": ["coach"]}, headers={**key, "If-Match": '"1"'}
    )
    assert patched.json()["capacity"] == 1 and patched.json()["version"] == 2

    mentee = await api.post(
        base, json={"employee_external_id": "M-2", "role": "mentee"}, headers=key
    )
    assert mentee.json()["capacity"] is None
    listed = (await api.get(base, params={"role": "mentor"}, headers=key)).json()
    assert [e["id"] for e in listed["items"]] == [enrollment["id"]]
    page = (await api.get(base, params={"limit": 1}, headers=key)).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = (await api.get(base, params={"cursor": page["next_cursor"]}, headers=key)).json()
    assert [e["id"] for e in rest["items"]] == [mentee.json()["id"]]

    withdrawn = await api.delete(url, headers={**key, "If-Match": '"2"'})
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    # Withdrawn, the person may enroll again (a new enrollment), and not reactivate the old.
    again = await api.post(base, json=mentor, headers=key)
    assert again.status_code == 201 and again.json()["id"] != enrollment["id"]
    reactivate = await api.patch(url, json={"status": "active"}, headers=key)
    assert reactivate.status_code == 409

    profiles = await service_db("profiles")
    try:
        published = await outbox_events(profiles, enrollment["id"])
        assert [e["type"] for e in published] == [
            "mentorbus.enrollment.created.v1",
            "mentorbus.enrollment.updated.v1",
            "mentorbus.enrollment.withdrawn.v1",
        ]
        data = published[0]["data"]
        assert data["employee_external_id"] == "M-1" and data["program_id"] == prog["id"]
        assert data["skills"] == mentor["skills"] and data["capacity"] == 3
        assert data["preferences"] == mentor["preferences"] and data["role"] == "mentor"
        assert published[1]["data"]["goals"] == ["coach"]
        assert published[2]["data"]["status"] == "withdrawn"
    finally:
        await profiles.close()


async def test_enrollment_rules(api: httpx.AsyncClient, org: Org) -> None:
    _, key = org
    await people(api, key, "R-1", "R-2")
    one_to_one = (await api.post("/v1/programs", json=program(), headers=key)).json()
    peer = (await api.post("/v1/programs", json=program(format="peer"), headers=key)).json()
    base = f"/v1/programs/{one_to_one['id']}/enrollments"

    async def refused(body: dict[str, Any], field: str, url: str = base) -> None:
        answer = await api.post(url, json=body, headers=key)
        assert answer.status_code == 422, (field, answer.text)
        assert field in [e["field"] for e in answer.json()["errors"]], answer.json()

    await refused({"employee_external_id": "R-1", "role": "both"}, "role")
    await refused({"employee_external_id": "R-1", "role": "boss"}, "role")
    await refused({"employee_external_id": "nobody", "role": "mentee"}, "employee_external_id")
    await refused({"employee_external_id": "R-1", "role": "mentee", "capacity": 2}, "capacity")
    await refused(
        {"employee_external_id": "R-1", "role": "mentor", "skills": [{"name": "Go", "level": 6}]},
        "skills.0.level",
    )
    await refused(
        {
            "employee_external_id": "R-1",
            "role": "mentor",
            "skills": [{"name": "Go", "level": 2}, {"name": "go", "level": 3}],
        },
        "skills",
    )
    await refused({"employee_external_id": "R-1", "role": "mentee", "languages": ["?"]},
                  "languages.0")  # fmt: skip
    # Preferences name wanted mentor values: a value or a list of them, nothing nested.
    for bad in ({"x": 1}, [["Berlin"]], None):
        await refused({"employee_external_id": "R-1", "role": "mentee",
                       "preferences": {"department": "Data", "location": bad}},
                      "preferences.location")  # fmt: skip
    both = await api.post(
        f"/v1/programs/{peer['id']}/enrollments",
        json={"employee_external_id": "R-1", "role": "both"},
        headers=key,
    )
    assert both.status_code == 201 and both.json()["capacity"] == 3
    closed = (await api.post("/v1/programs", json=program(status="closed"), headers=key)).json()
    late = await api.post(
        f"/v1/programs/{closed['id']}/enrollments",
        json={"employee_external_id": "R-2", "role": "mentee"},
        headers=key,
    )
    assert late.status_code == 409


async def test_another_organizations_programs_and_enrollments_are_not_found(
    api: httpx.AsyncClient, org: Org, admin: dict[str, str]
) -> None:
    _, key = org
    _, other = await create_org(api, admin)
    await people(api, key, "I-1")
    await people(api, other, "I-1")
    prog = (await api.post("/v1/programs", json=program(), headers=key)).json()
    enrollment = (
        await api.post(
            f"/v1/programs/{prog['id']}/enrollments",
            json={"employee_external_id": "I-1", "role": "mentee"},
            headers=key,
        )
    ).json()
    url = f"/v1/programs/{prog['id']}"
    assert (await api.get(url, headers=other)).status_code == 404
    assert (await api.patch(url, json={"name": "x"}, headers=other)).status_code == 404
    assert (await api.get(f"{url}/enrollments", headers=other)).status_code == 404
    joined = await api.post(
        f"{url}/enrollments", json={"employee_external_id": "I-1", "role": "mentee"}, headers=other
    )
    assert joined.status_code == 404
    one = f"{url}/enrollments/{enrollment['id']}"
    assert (await api.get(one, headers=other)).status_code == 404
    assert (await api.patch(one, json={"bio": "x"}, headers=other)).status_code == 404
    assert (await api.delete(one, headers=other)).status_code == 404
    assert prog["id"] not in [
        p["id"] for p in (await api.get("/v1/programs", headers=other)).json()["items"]
    ]
