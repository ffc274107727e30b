"""Employees through the gateway: upsert, bulk sync, offboarding, ETags, bad input,
tenant isolation and what lands in the outbox."""

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import asyncpg
import httpx

from shared.events import PersonUpsertedV1, parse_event
from tests.helpers import eventually
from tests.profiles.support import outbox_events, unique

Connect = Callable[[str], Awaitable[asyncpg.Connection]]
Org = tuple[str, dict[str, str]]
UPSERTED = "mentorbus.person.upserted.v1"
DEACTIVATED = "mentorbus.person.deactivated.v1"


def employee(**fields: Any) -> dict[str, Any]:
    """A plausible HRIS record."""
    return {
        "email": "grace@example.com",
        "given_name": "Grace",
        "family_name": "Hopper",
        "display_name": "Grace Hopper",
        "title": "Rear Admiral",
        "department": "Navy",
        "division": "Research",
        "cost_center": "CC-1",
        "location": "Arlington",
        "time_zone": "America/New_York",
        "languages": ["en", "es-MX"],
        "hire_date": "1943-12-01",
        "employment_status": "active",
        "attributes": {"level": "L7", "clearance": True},
        **fields,
    }


async def test_put_get_roundtrip_with_etag_and_unchanged_upsert_publishes_nothing(
    api: httpx.AsyncClient, org: Org, service_db: Connect
) -> None:
    _, key = org
    created = await api.put("/v1/employees/E-1", json=employee(), headers=key)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["external_id"] == "E-1" and body["version"] == 1
    assert body["languages"] == ["en", "es-MX"] and body["attributes"]["level"] == "L7"
    assert created.headers["etag"] == '"1"'

    fetched = await api.get("/v1/employees/E-1", headers=key)
    assert fetched.status_code == 200 and fetched.headers["etag"] == '"1"'
    assert fetched.json() == body

    again = await api.put("/v1/employees/E-1", json=employee(), headers=key)
    assert again.status_code == 200 and again.json()["version"] == 1

    profiles = await service_db("profiles")
    try:
        assert [e["type"] for e in await outbox_events(profiles, body["id"])] == [UPSERTED]
        changed = await api.put("/v1/employees/E-1", json=employee(title="Commodore"), headers=key)
        assert changed.json()["version"] == 2 and changed.headers["etag"] == '"2"'
        published = await outbox_events(profiles, body["id"], UPSERTED)
        assert len(published) == 2
        event = published[-1]
        assert event["data"]["title"] == "Commodore" and event["data"]["version"] == 2
        assert event["orgid"] == org[0] and event["subject"] == body["id"]
    finally:
        await profiles.close()


async def test_if_match_is_honoured(api: httpx.AsyncClient, org: Org) -> None:
    _, key = org
    await api.put("/v1/employees/E-2", json=employee(), headers=key)
    stale = await api.put(
        "/v1/employees/E-2", json=employee(title="x"), headers={**key, "If-Match": '"7"'}
    )
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    fresh = await api.put(
        "/v1/employees/E-2", json=employee(title="x"), headers={**key, "If-Match": '"1"'}
    )
    assert fresh.status_code == 200 and fresh.json()["version"] == 2
    missing = await api.put(
        "/v1/employees/E-nobody", json=employee(), headers={**key, "If-Match": "*"}
    )
    assert missing.status_code == 412
    delete_stale = await api.delete("/v1/employees/E-2", headers={**key, "If-Match": '"1"'})
    assert delete_stale.status_code == 412
    bad = await api.put("/v1/employees/E-2", json=employee(), headers={**key, "If-Match": "x"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "If-Match"


async def test_bad_input_is_422_naming_the_field(api: httpx.AsyncClient, org: Org) -> None:
    _, key = org
    cases = {
        "time_zone": employee(time_zone="Mars/Olympus_Mons"),
        "email": employee(email="not-an-email"),
        "attributes": employee(attributes={"blob": "x" * 20_000}),
        "languages.0": employee(languages=["english!"]),
        "employment_status": employee(employment_status="retired"),
        "hire_date": employee(hire_date="yesterday"),
    }
    for field, record in cases.items():
        answer = await api.put("/v1/employees/E-bad", json=record, headers=key)
        assert answer.status_code == 422, (field, answer.text)
        problem = answer.json()
        assert answer.headers["content-type"] == "application/problem+json"
        assert problem["status"] == 422 and problem["title"]
        assert field in [e["field"] for e in problem["errors"]], (field, problem)


async def test_manager_may_come_later_but_never_in_a_cycle(
    api: httpx.AsyncClient, org: Org
) -> None:
    _, key = org
    first = await api.put("/v1/employees/A", json=employee(manager_external_id="B"), headers=key)
    assert first.status_code == 201  # B does not exist yet: fine
    await api.put("/v1/employees/B", json=employee(manager_external_id="C"), headers=key)
    cycle = await api.put("/v1/employees/C", json=employee(manager_external_id="A"), headers=key)
    assert cycle.status_code == 422
    assert cycle.json()["errors"][0]["field"] == "manager_external_id"
    own = await api.put("/v1/employees/D", json=employee(manager_external_id="D"), headers=key)
    assert own.status_code == 422


async def test_bulk_reports_each_record_and_one_bad_row_never_sinks_the_batch(
    api: httpx.AsyncClient, org: Org, service_db: Connect
) -> None:
    _, key = org
    await api.put("/v1/employees/K-1", json=employee(), headers=key)
    await api.put("/v1/employees/K-2", json=employee(), headers=key)
    records = [
        {"external_id": "K-1", **employee()},  # unchanged
        {"external_id": "K-2", **employee(title="CTO")},  # updated
        {"external_id": "K-3", **employee(manager_external_id="K-2")},  # created
        {"external_id": "K-4", **employee(time_zone="Nowhere/City")},  # error
        {"external_id": "K-5", **employee(manager_external_id="K-6")},  # cycle with K-6
        {"external_id": "K-6", **employee(manager_external_id="K-5")},
        {"external_id": "K-3", **employee()},  # duplicate in batch
        {"email": "no-id@example.com"},  # no external id
        {"external_id": "K-7", **employee(), "unknown_field": 1},
    ]
    answer = await api.post("/v1/employees/bulk", json={"employees": records}, headers=key)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [
        "unchanged", "updated", "created", "error", "error", "error", "error", "error", "error",
    ]  # fmt: skip
    assert [r["external_id"] for r in results[:7]] == [
        "K-1", "K-2", "K-3", "K-4", "K-5", "K-6", "K-3",
    ]  # fmt: skip
    assert results[3]["errors"][0]["field"] == "time_zone"
    assert results[4]["errors"][0]["field"] == "manager_external_id"
    assert results[7]["errors"][0]["field"] == "external_id"
    assert results[8]["errors"][0]["field"] == "unknown_field"
    assert results[1]["version"] == 2 and results[2]["version"] == 1

    k2 = (await api.get("/v1/employees/K-2", headers=key)).json()
    assert k2["title"] == "CTO" and k2["version"] == 2
    k3 = (await api.get("/v1/employees/K-3", headers=key)).json()
    assert k3["manager_external_id"] == "K-2" and k3["languages"] == ["en", "es-MX"]
    assert (await api.get("/v1/employees/K-4", headers=key)).status_code == 404

    k1 = (await api.get("/v1/employees/K-1", headers=key)).json()
    profiles = await service_db("profiles")
    try:
        assert len(await outbox_events(profiles, k1["id"])) == 1  # from the PUT only
        assert [e["data"]["version"] for e in await outbox_events(profiles, k2["id"])] == [1, 2]
        (k3_event,) = await outbox_events(profiles, k3["id"])
        assert k3_event["type"] == UPSERTED
        assert k3_event["data"]["manager_external_id"] == "K-2"
        assert k3_event["data"]["attributes"] == {"level": "L7", "clearance": True}
        # The bulk path builds its envelopes in SQL: they must parse as the contract says,
        # and be exactly what `make_event` builds (as the PUT did for K-2's first version).
        envelope, data = parse_event(json.dumps(k3_event))
        assert isinstance(data, PersonUpsertedV1) and data.hire_date == date(1943, 12, 1)
        assert envelope.subject == k3["id"] and envelope.orgid == org[0]
        assert k3_event == envelope.model_dump(mode="json")
        assert k3_event["data"] == data.model_dump(mode="json")
        put, bulk = await outbox_events(profiles, k2["id"])
        assert put.keys() == bulk.keys() and put["data"].keys() == bulk["data"].keys()
        different = {k for k in put if put[k] != bulk[k]}
        assert different == {"id", "time", "data"}
        changed = {k for k in put["data"] if put["data"][k] != bulk["data"][k]}
        assert changed == {"version", "title", "history_entry"}
        assert put["data"]["history_entry"] | {"title": "CTO"} == bulk["data"]["history_entry"]
        assert bulk["time"].endswith("Z") and put["time"].endswith("Z")
    finally:
        await profiles.close()

    # The same batch again: all unchanged, nothing published.
    again = await api.post("/v1/employees/bulk", json={"employees": records[:3]}, headers=key)
    assert [r["status"] for r in again.json()["results"]] == ["unchanged"] * 3


async def test_bulk_limits(api: httpx.AsyncClient, org: Org) -> None:
    _, key = org
    broken = await api.post(
        "/v1/employees/bulk",
        content=b'{"employees": [',
        headers={**key, "content-type": "application/json"},
    )
    assert broken.status_code == 422 and broken.json()["errors"][0]["field"] == "body"
    not_a_list = await api.post("/v1/employees/bulk", json={"employees": {}}, headers=key)
    assert not_a_list.status_code == 422
    assert not_a_list.json()["errors"][0]["field"] == "employees"
    too_many = [{"external_id": f"X-{i}"} for i in range(1001)]
    answer = await api.post("/v1/employees/bulk", json={"employees": too_many}, headers=key)
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "employees"
    thousand = [{"external_id": f"X-{i:04}", "email": f"x{i}@example.com"} for i in range(1000)]
    answer = await api.post("/v1/employees/bulk", json={"employees": thousand}, headers=key)
    assert answer.status_code == 200
    assert {r["status"] for r in answer.json()["results"]} == {"created"}
    page = await api.get("/v1/employees", params={"limit": 200}, headers=key)
    assert len(page.json()["items"]) == 200 and page.json()["next_cursor"]


async def test_bulk_offboards_who_becomes_inactive(
    api: httpx.AsyncClient, org: Org, service_db: Connect
) -> None:
    _, key = org
    person = (await api.put("/v1/employees/Q-1", json=employee(), headers=key)).json()
    program = (await api.post("/v1/programs", json={"name": "P"}, headers=key)).json()
    enrolled = await api.post(
        f"/v1/programs/{program['id']}/enrollments",
        json={"employee_external_id": "Q-1", "role": "mentee"},
        headers=key,
    )
    record = {"external_id": "Q-1", **employee(employment_status="inactive")}
    answer = await api.post("/v1/employees/bulk", json={"employees": [record]}, headers=key)
    assert answer.json()["results"][0]["status"] == "updated"
    enrollment = await api.get(
        f"/v1/programs/{program['id']}/enrollments/{enrolled.json()['id']}", headers=key
    )
    assert enrollment.json()["status"] == "withdrawn"
    profiles = await service_db("profiles")
    try:
        assert (await outbox_events(profiles, person["id"]))[-1]["type"] == DEACTIVATED
    finally:
        await profiles.close()


async def test_offboarding_deactivates_and_withdraws_enrollments(
    api: httpx.AsyncClient, org: Org, service_db: Connect
) -> None:
    _, key = org
    person = (await api.put("/v1/employees/O-1", json=employee(), headers=key)).json()
    programs = [
        (await api.post("/v1/programs", json={"name": n}, headers=key)).json() for n in "AB"
    ]
    enrollments = [
        (
            await api.post(
                f"/v1/programs/{p['id']}/enrollments",
                json={"employee_external_id": "O-1", "role": "mentor"},
                headers=key,
            )
        ).json()
        for p in programs
    ]
    offboarded = await api.delete("/v1/employees/O-1", headers={**key, "If-Match": '"1"'})
    assert offboarded.status_code == 200, offboarded.text
    assert offboarded.json()["employment_status"] == "inactive"
    assert offboarded.json()["version"] == 2 and offboarded.headers["etag"] == '"2"'
    for program, enrollment in zip(programs, enrollments, strict=True):
        now = await api.get(
            f"/v1/programs/{program['id']}/enrollments/{enrollment['id']}", headers=key
        )
        assert now.json()["status"] == "withdrawn" and now.json()["version"] == 2
    # Offboarding again changes nothing; the person stays visible, inactive.
    again = await api.delete("/v1/employees/O-1", headers=key)
    assert again.status_code == 200 and again.json()["version"] == 2
    inactive = await api.get("/v1/employees", params={"employment_status": "inactive"}, headers=key)
    assert [e["external_id"] for e in inactive.json()["items"]] == ["O-1"]
    # An inactive person cannot enroll.
    refused = await api.post(
        f"/v1/programs/{programs[0]['id']}/enrollments",
        json={"employee_external_id": "O-1", "role": "mentee"},
        headers=key,
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "employee_external_id"

    profiles = await service_db("profiles")
    try:
        person_events = await outbox_events(profiles, person["id"])
        assert [e["type"] for e in person_events] == [UPSERTED, DEACTIVATED]
        assert person_events[-1]["data"]["employment_status"] == "inactive"
        for enrollment in enrollments:
            types = [e["type"] for e in await outbox_events(profiles, enrollment["id"])]
            assert types == [
                "mentorbus.enrollment.created.v1",
                "mentorbus.enrollment.withdrawn.v1",
            ]
    finally:
        await profiles.close()
    assert (await api.delete("/v1/employees/nobody", headers=key)).status_code == 404


async def test_list_pages_by_external_id(api: httpx.AsyncClient, org: Org) -> None:
    _, key = org
    ids = [f"P-{i:02}" for i in range(7)]
    records = [{"external_id": i} for i in reversed(ids)]
    await api.post("/v1/employees/bulk", json={"employees": records}, headers=key)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/employees", params=params, headers=key)).json()
        seen += [e["external_id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    bad = await api.get("/v1/employees", params={"cursor": "!!"}, headers=key)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"


async def test_another_organizations_employee_is_not_found(
    api: httpx.AsyncClient, org: Org, admin: dict[str, str]
) -> None:
    from tests.helpers import create_org

    _, key = org
    _, other = await create_org(api, admin)
    external_id = unique("T")
    await api.put(f"/v1/employees/{external_id}", json=employee(), headers=key)
    assert (await api.get(f"/v1/employees/{external_id}", headers=other)).status_code == 404
    assert (await api.delete(f"/v1/employees/{external_id}", headers=other)).status_code == 404
    listed = (await api.get("/v1/employees", headers=other)).json()
    assert external_id not in [e["external_id"] for e in listed["items"]]
    # The same HRIS id in another organization is another person.
    theirs = await api.put(f"/v1/employees/{external_id}", json=employee(), headers=other)
    assert theirs.status_code == 201
    mine = (await api.get(f"/v1/employees/{external_id}", headers=key)).json()
    assert theirs.json()["id"] != mine["id"]


async def test_multi_batch_sync_whose_managers_arrive_after_their_reports(
    api: httpx.AsyncClient, org: Org, service_db: Callable[[str], Awaitable[asyncpg.Connection]]
) -> None:
    """An HRIS sends its people in any order: reports first, their managers batches later.
    Each report is accepted at once and linked when the manager arrives, in profiles, in
    the SCIM view and in every consumer's projection."""
    org_id, key = org
    boss, leads = unique("CEO"), [unique("LEAD") for _ in range(2)]
    reports = [{"external_id": unique("IC"), "manager_external_id": leads[i % 2]} for i in range(4)]
    batches = [
        reports,
        [{"external_id": lead, "manager_external_id": boss} for lead in leads],
        [{"external_id": boss}],
    ]
    for batch in batches:
        answer = await api.post("/v1/employees/bulk", json={"employees": batch}, headers=key)
        assert answer.status_code == 200, answer.text
        assert {r["status"] for r in answer.json()["results"]} == {"created"}

    lead = (await api.get(f"/v1/employees/{leads[0]}", headers=key)).json()
    report = (await api.get(f"/v1/employees/{reports[0]['external_id']}", headers=key)).json()
    assert report["manager_external_id"] == leads[0]
    scim = (await api.get(f"/scim/v2/Users/{report['id']}", headers=key)).json()
    assert (
        scim["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"]["value"]
        == lead["id"]
    )
    # A later batch closing a cycle through the linked chain is that record's error.
    cycle = [{"external_id": boss, "manager_external_id": reports[0]["external_id"]}]
    answer = await api.post("/v1/employees/bulk", json={"employees": cycle}, headers=key)
    (result,) = answer.json()["results"]
    assert result["status"] == "error" and result["errors"][0]["field"] == "manager_external_id"

    # Every consumer's projection holds everyone; matching's holds the whole chain.
    wanted: dict[str, str | None] = {r["external_id"]: r["manager_external_id"] for r in reports}
    wanted |= {lead_id: boss for lead_id in leads} | {boss: None}
    for service in ("matching", "sessions", "feedback"):
        conn = await service_db(service)
        try:
            found = await eventually(lambda c=conn: _projected(c, org_id, wanted), timeout=30)  # type: ignore[misc]
            if service == "matching":
                chain = await conn.fetch(
                    "SELECT external_id, manager_external_id FROM person WHERE org_id = $1",
                    uuid.UUID(org_id),
                )
                assert {r["external_id"]: r["manager_external_id"] for r in chain} == wanted
            assert found == len(wanted)
        finally:
            await conn.close()


async def _projected(conn: asyncpg.Connection, org_id: str, wanted: dict[str, Any]) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM person WHERE org_id = $1 AND external_id = ANY($2)",
        uuid.UUID(org_id),
        list(wanted),
    )
    return count if count == len(wanted) else 0
