"""SCIM 2.0 through the gateway, beyond the conformance checker: SCIM users and
/v1/employees are the same people, filters and paging, offboarding, groups, errors and
tenant isolation."""

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx

from tests.helpers import create_org
from tests.profiles.support import outbox_events

Connect = Callable[[str], Awaitable[asyncpg.Connection]]
Org = tuple[str, dict[str, str]]
SCIM = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def scim_user(user_name: str, **fields: Any) -> dict[str, Any]:
    """A SCIM User as an identity provider sends it."""
    return {
        "schemas": [USER, ENTERPRISE],
        "userName": user_name,
        "name": {"givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada Lovelace"},
        "displayName": "Ada Lovelace",
        "emails": [
            {"value": f"{user_name}@example.com", "type": "work", "primary": True},
            {"value": f"{user_name}@home.example", "type": "home"},
        ],
        "phoneNumbers": [{"value": "+44 20 7946 0000", "type": "work"}],
        "timezone": "Europe/London",
        "active": True,
        ENTERPRISE: {"employeeNumber": "701", "department": "Analytics", "costCenter": "CC-9"},
        **fields,
    }


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    """A PatchOp body."""
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


async def test_hris_people_are_scim_users(api: httpx.AsyncClient, org: Org) -> None:
    _, key = org
    record = {
        "email": "lin@example.com",
        "given_name": "Lin",
        "family_name": "Chen",
        "department": "Sales",
        "cost_center": "C-1",
        "time_zone": "Asia/Taipei",
    }
    person = (await api.put("/v1/employees/H-1", json=record, headers=key)).json()
    answer = await api.get(f"/scim/v2/Users/{person['id']}", headers=key)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith(SCIM)
    user = answer.json()
    assert user["userName"] == "lin@example.com" and user["externalId"] == "H-1"
    assert user["name"] == {"givenName": "Lin", "familyName": "Chen"}
    assert user["emails"] == [{"value": "lin@example.com", "type": "work", "primary": True}]
    assert user["active"] is True and user["timezone"] == "Asia/Taipei"
    assert user[ENTERPRISE] == {"department": "Sales", "costCenter": "C-1"}
    assert user["meta"]["resourceType"] == "User"
    assert user["meta"]["location"].endswith(f"/scim/v2/Users/{person['id']}")
    assert answer.headers["etag"] == user["meta"]["version"]

    found = await api.get("/scim/v2/Users", params={"filter": 'externalId eq "H-1"'}, headers=key)
    assert [u["id"] for u in found.json()["Resources"]] == [person["id"]]


async def test_scim_create_is_an_employee_and_takes_over_hris_records(
    api: httpx.AsyncClient, org: Org, service_db: Connect
) -> None:
    _, key = org
    created = await api.post("/scim/v2/Users", json=scim_user("ada", externalId="W-1"), headers=key)
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["phoneNumbers"] == [{"value": "+44 20 7946 0000", "type": "work"}]
    assert user[ENTERPRISE]["employeeNumber"] == "701"
    employee = (await api.get("/v1/employees/W-1", headers=key)).json()
    assert employee["id"] == user["id"] and employee["email"] == "ada@example.com"
    assert employee["given_name"] == "Ada" and employee["department"] == "Analytics"
    assert employee["cost_center"] == "CC-9" and employee["time_zone"] == "Europe/London"

    # Without externalId the HRIS id is the SCIM id (nobody else's, ever).
    bare = (await api.post("/scim/v2/Users", json=scim_user("grace"), headers=key)).json()
    assert (await api.get(f"/v1/employees/{bare['id']}", headers=key)).json()["id"] == bare["id"]

    # An HRIS employee not provisioned yet is taken over, not duplicated.
    hris = (await api.put("/v1/employees/W-2", json={"title": "CFO"}, headers=key)).json()
    claimed = await api.post("/scim/v2/Users", json=scim_user("bob", externalId="W-2"), headers=key)
    assert claimed.status_code == 201 and claimed.json()["id"] == hris["id"]
    assert claimed.json()["title"] == "CFO"  # the HRIS fields the IdP did not send stay

    again = await api.post("/scim/v2/Users", json=scim_user("bob", externalId="W-9"), headers=key)
    assert again.status_code == 409
    assert again.json()["schemas"] == [ERROR] and again.json()["scimType"] == "uniqueness"
    case = await api.post("/scim/v2/Users", json=scim_user("BOB", externalId="W-8"), headers=key)
    assert case.status_code == 409  # userName is case-insensitive

    profiles = await service_db("profiles")
    try:
        (event,) = await outbox_events(profiles, user["id"])
        assert event["type"] == "mentorbus.person.upserted.v1"
        assert event["data"]["external_id"] == "W-1" and event["data"]["department"] == "Analytics"
    finally:
        await profiles.close()


async def test_filters_and_paging(api: httpx.AsyncClient, org: Org) -> None:
    _, key = org
    ids = []
    for i in range(5):
        body = scim_user(f"user{i}", externalId=f"F-{i}", active=i != 3)
        ids.append((await api.post("/scim/v2/Users", json=body, headers=key)).json()["id"])

    async def search(filter_: str, **params: Any) -> dict[str, Any]:
        answer = await api.get("/scim/v2/Users", params={"filter": filter_, **params}, headers=key)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    by_name = await search('userName eq "USER2"')
    assert [u["id"] for u in by_name["Resources"]] == [ids[2]] and by_name["totalResults"] == 1
    assert [u["id"] for u in (await search('externalId eq "F-4"'))["Resources"]] == [ids[4]]
    primary = await search('emails.value eq "user1@example.com"')
    assert [u["id"] for u in primary["Resources"]] == [ids[1]]
    secondary = await search('emails.value eq "user1@home.example"')
    assert [u["id"] for u in secondary["Resources"]] == [ids[1]]
    assert [u["id"] for u in (await search("active eq false"))["Resources"]] == [ids[3]]
    both = await search('userName sw "user" and active eq true')
    assert both["totalResults"] == 4
    # A filter the SQL translation does not cover still answers correctly.
    phone = await search('phoneNumbers.value co "7946" and userName eq "user0"')
    assert [u["id"] for u in phone["Resources"]] == [ids[0]]

    page = await search('userName sw "user"', startIndex=2, count=2)
    assert page["totalResults"] == 5 and page["startIndex"] == 2 and page["itemsPerPage"] == 2
    assert [u["id"] for u in page["Resources"]] == ids[1:3]
    projected = await search('userName eq "user0"', attributes="userName")
    assert set(projected["Resources"][0]) == {"id", "schemas", "userName"}

    # POST /.search, on Users and at the root (Users and Groups as one collection).
    search_request = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}
    body = {**search_request, "filter": 'userName eq "user4"'}
    for path in ("/scim/v2/Users/.search", "/scim/v2/.search"):
        answer = await api.post(path, json=body, headers=key)
        assert answer.status_code == 200, (path, answer.text)
        assert [u["id"] for u in answer.json()["Resources"]] == [ids[4]]

    bad = await api.get("/scim/v2/Users", params={"filter": "userName eq"}, headers=key)
    assert bad.status_code == 400 and bad.json()["scimType"] == "invalidFilter"


async def test_patch_and_etag(api: httpx.AsyncClient, org: Org) -> None:
    _, key = org
    created = await api.post(
        "/scim/v2/Users", json=scim_user("pat", externalId="PT-1"), headers=key
    )
    url = f"/scim/v2/Users/{created.json()['id']}"
    version = created.json()["meta"]["version"]
    changed = await api.patch(
        url,
        json=patch(
            {"op": "replace", "path": "name.givenName", "value": "Augusta"},
            {"op": "add", "path": "title", "value": "Countess"},
            {"op": "remove", "path": "phoneNumbers"},
            {"op": "replace", "path": f"{ENTERPRISE}:department", "value": "Maths"},
        ),
        headers={**key, "If-Match": version},
    )
    assert changed.status_code == 200, changed.text
    user = changed.json()
    assert user["name"]["givenName"] == "Augusta" and user["title"] == "Countess"
    assert "phoneNumbers" not in user and user[ENTERPRISE]["department"] == "Maths"
    assert user["meta"]["version"] != version
    employee = (await api.get("/v1/employees/PT-1", headers=key)).json()
    assert employee["given_name"] == "Augusta" and employee["title"] == "Countess"
    assert employee["department"] == "Maths"

    stale = await api.patch(
        url,
        json=patch({"op": "replace", "path": "title", "value": "x"}),
        headers={**key, "If-Match": version},
    )
    assert stale.status_code == 412
    bad_zone = await api.patch(
        url, json=patch({"op": "replace", "path": "timezone", "value": "Mars/Base"}), headers=key
    )
    assert bad_zone.status_code == 400 and bad_zone.json()["scimType"] == "invalidValue"

    # A change through /v1 shows in SCIM: the columns win for what they map.
    await api.put(
        "/v1/employees/PT-1",
        json={**{k: employee[k] for k in ("given_name", "department")}, "email": "n@x.org"},
        headers=key,
    )
    after = (await api.get(url, headers=key)).json()
    assert after["emails"][0] == {"value": "n@x.org", "type": "work", "primary": True}
    assert "title" not in after  # the HRIS record has no title any more


async def test_manager_is_a_user_reference(api: httpx.AsyncClient, org: Org) -> None:
    _, key = org
    boss = (
        await api.post("/scim/v2/Users", json=scim_user("boss", externalId="B-1"), headers=key)
    ).json()
    body = scim_user("report", externalId="B-2")
    body[ENTERPRISE]["manager"] = {"value": boss["id"]}
    report = await api.post("/scim/v2/Users", json=body, headers=key)
    assert report.status_code == 201, report.text
    assert report.json()[ENTERPRISE]["manager"]["value"] == boss["id"]
    employee = (await api.get("/v1/employees/B-2", headers=key)).json()
    assert employee["manager_external_id"] == "B-1"
    body[ENTERPRISE]["manager"] = {"value": report.json()["id"]}
    itself = await api.put(f"/scim/v2/Users/{report.json()['id']}", json=body, headers=key)
    assert itself.status_code == 400 and itself.json()["scimType"] == "invalidValue"


async def test_deactivation_and_deletion_offboard(
    api: httpx.AsyncClient, org: Org, service_db: Connect
) -> None:
    _, key = org
    user = (
        await api.post("/scim/v2/Users", json=scim_user("off", externalId="D-1"), headers=key)
    ).json()
    prog = (await api.post("/v1/programs", json={"name": "P"}, headers=key)).json()
    enrollment = (
        await api.post(
            f"/v1/programs/{prog['id']}/enrollments",
            json={"employee_external_id": "D-1", "role": "mentee"},
            headers=key,
        )
    ).json()
    url = f"/scim/v2/Users/{user['id']}"
    off = await api.patch(
        url, json=patch({"op": "replace", "path": "active", "value": False}), headers=key
    )
    assert off.status_code == 200 and off.json()["active"] is False
    assert (await api.get("/v1/employees/D-1", headers=key)).json()[
        "employment_status"
    ] == "inactive"
    withdrawn = await api.get(
        f"/v1/programs/{prog['id']}/enrollments/{enrollment['id']}", headers=key
    )
    assert withdrawn.json()["status"] == "withdrawn"
    on = await api.patch(
        url, json=patch({"op": "replace", "path": "active", "value": True}), headers=key
    )
    assert on.json()["active"] is True
    assert (await api.get("/v1/employees/D-1", headers=key)).json()["employment_status"] == "active"

    deleted = await api.delete(url, headers=key)
    assert deleted.status_code == 204
    gone = await api.get(url, headers=key)
    assert gone.status_code == 404 and gone.json()["schemas"] == [ERROR]
    assert gone.headers["content-type"].startswith(SCIM)
    kept = (await api.get("/v1/employees/D-1", headers=key)).json()
    assert kept["employment_status"] == "inactive"  # the employee stays, as history
    # Provisioning them again brings the same person back.
    back = await api.post("/scim/v2/Users", json=scim_user("off", externalId="D-1"), headers=key)
    assert back.status_code == 201 and back.json()["id"] == user["id"]

    profiles = await service_db("profiles")
    try:
        types = [e["type"].split(".")[2] for e in await outbox_events(profiles, user["id"])]
        assert types == ["upserted", "deactivated", "upserted", "deactivated", "upserted"]
    finally:
        await profiles.close()


async def test_groups_with_members(api: httpx.AsyncClient, org: Org) -> None:
    _, key = org
    a = (await api.post("/scim/v2/Users", json=scim_user("ga"), headers=key)).json()
    b = (await api.post("/scim/v2/Users", json=scim_user("gb"), headers=key)).json()
    created = await api.post(
        "/scim/v2/Groups",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Mentors",
            "members": [{"value": a["id"], "type": "User"}, {"value": b["id"], "type": "User"}],
        },
        headers=key,
    )
    assert created.status_code == 201, created.text
    group = created.json()
    assert {m["value"] for m in group["members"]} == {a["id"], b["id"]}
    member = (await api.get(f"/scim/v2/Users/{a['id']}", headers=key)).json()
    assert member["groups"][0]["value"] == group["id"]
    assert member["groups"][0]["display"] == "Mentors"

    url = f"/scim/v2/Groups/{group['id']}"
    removed = await api.patch(
        url, json=patch({"op": "remove", "path": f'members[value eq "{a["id"]}"]'}), headers=key
    )
    assert [m["value"] for m in removed.json()["members"]] == [b["id"]]
    assert "groups" not in (await api.get(f"/scim/v2/Users/{a['id']}", headers=key)).json()
    found = await api.get(
        "/scim/v2/Groups", params={"filter": 'displayName eq "mentors"'}, headers=key
    )
    assert [g["id"] for g in found.json()["Resources"]] == [group["id"]]
    unknown = await api.patch(
        url,
        json=patch({"op": "add", "path": "members", "value": [{"value": "nope"}]}),
        headers=key,
    )
    # Not a member (no such user), and not a refusal: identity providers add in any order.
    assert unknown.status_code == 200
    assert [m["value"] for m in unknown.json()["members"]] == [b["id"]]
    # A deprovisioned user leaves their groups.
    await api.delete(f"/scim/v2/Users/{b['id']}", headers=key)
    assert "members" not in (await api.get(url, headers=key)).json()
    assert (await api.delete(url, headers=key)).status_code == 204
    assert (await api.get(url, headers=key)).status_code == 404


async def test_discovery(api: httpx.AsyncClient, org: Org) -> None:
    _, key = org
    config = (await api.get("/scim/v2/ServiceProviderConfig", headers=key)).json()
    assert config["patch"]["supported"] and config["filter"]["supported"]
    assert config["etag"]["supported"] and not config["bulk"]["supported"]
    types = (await api.get("/scim/v2/ResourceTypes", headers=key)).json()
    assert {t["name"] for t in types["Resources"]} == {"User", "Group"}
    schemas = (await api.get("/scim/v2/Schemas", headers=key)).json()
    ids = {s["id"] for s in schemas["Resources"]}
    assert {USER, ENTERPRISE, "urn:ietf:params:scim:schemas:core:2.0:Group"} <= ids
    user_schema = (await api.get(f"/scim/v2/Schemas/{USER}", headers=key)).json()
    names = {a["name"] for a in user_schema["attributes"]}
    assert "password" not in names and "timezone" in names
    assert (await api.get("/scim/v2/ServiceProviderConfig")).status_code == 401


async def test_another_organizations_users_and_groups_are_not_found(
    api: httpx.AsyncClient, org: Org, admin: dict[str, str]
) -> None:
    _, key = org
    _, other = await create_org(api, admin)
    user = (await api.post("/scim/v2/Users", json=scim_user("iso"), headers=key)).json()
    group = (
        await api.post(
            "/scim/v2/Groups",
            json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G"},
            headers=key,
        )
    ).json()
    assert (await api.get(f"/scim/v2/Users/{user['id']}", headers=other)).status_code == 404
    assert (await api.delete(f"/scim/v2/Users/{user['id']}", headers=other)).status_code == 404
    assert (await api.get(f"/scim/v2/Groups/{group['id']}", headers=other)).status_code == 404
    listed = (await api.get("/scim/v2/Users", headers=other)).json()
    assert listed["totalResults"] == 0
    # Their group cannot take our user as a member.
    theirs = await api.post(
        "/scim/v2/Groups",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "H",
            "members": [{"value": user["id"]}],
        },
        headers=other,
    )
    assert theirs.status_code == 201 and "members" not in theirs.json()
    # The same userName in another organization is someone else.
    same = await api.post("/scim/v2/Users", json=scim_user("iso"), headers=other)
    assert same.status_code == 201 and same.json()["id"] != user["id"]
