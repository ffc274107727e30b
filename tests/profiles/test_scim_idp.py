"""SCIM as Microsoft Entra ID and Okta speak it (their public provisioning docs), through
the gateway: SCIM errors on every answer, forward manager references, their PATCH
dialects, externalId reuse, filters in SQL, and the bounds that protect other tenants."""

import json
from typing import Any

import httpx

from tests.helpers import create_org
from tests.profiles.support import unique
from tests.profiles.test_scim import ENTERPRISE, ERROR, SCIM, USER, Org, patch, scim_user

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MANAGER_PATH = f"{ENTERPRISE}:manager"


def person(user_name: str, **fields: Any) -> dict[str, Any]:
    """A user with a userName no other test uses."""
    return scim_user(unique(user_name), **fields)


async def created(api: httpx.AsyncClient, key: dict[str, str], body: dict[str, Any]) -> Any:
    answer = await api.post("/scim/v2/Users", json=body, headers=key)
    assert answer.status_code == 201, answer.text
    return answer.json()


def assert_scim_error(answer: httpx.Response, status: int, scim_type: str | None = None) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(SCIM)
    body = answer.json()
    assert body["schemas"] == [ERROR] and body["status"] == str(status)
    if scim_type is not None:
        assert body["scimType"] == scim_type


async def test_gateway_refusals_on_scim_paths_are_scim_errors(
    api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert_scim_error(await api.get("/scim/v2/Users"), 401)
    bad = await api.get("/scim/v2/Users", headers={"Authorization": "Bearer nope"})
    assert_scim_error(bad, 401)
    assert bad.headers["www-authenticate"].lower().startswith("bearer")
    _, programs_only = await create_org(api, admin, scopes=["programs"])
    assert_scim_error(await api.get("/scim/v2/Users", headers=programs_only), 403)
    assert_scim_error(await api.post("/scim/v2/Users", json={}, headers=programs_only), 403)
    # The REST door keeps problem+json.
    rest = await api.get("/v1/employees")
    assert rest.status_code == 401
    assert rest.headers["content-type"].startswith("application/problem+json")


async def test_forward_manager_reference_links_when_the_manager_arrives(
    api: httpx.AsyncClient, org: Org
) -> None:
    _, key = org
    boss_key = unique("MGR")
    body = person("report", externalId=unique("R"))
    body[ENTERPRISE]["manager"] = {"value": boss_key}
    report = await created(api, key, body)
    assert report[ENTERPRISE]["manager"]["value"] == boss_key  # kept as sent meanwhile
    employee = (await api.get(f"/v1/employees/{body['externalId']}", headers=key)).json()
    assert employee["manager_external_id"] == boss_key

    boss = await created(api, key, person("boss", externalId=boss_key))
    now = (await api.get(f"/scim/v2/Users/{report['id']}", headers=key)).json()
    assert now[ENTERPRISE]["manager"]["value"] == boss["id"]
    assert now[ENTERPRISE]["manager"]["$ref"].endswith(f"/Users/{boss['id']}")
    assert (await api.get(f"/v1/employees/{boss_key}", headers=key)).json()["id"] == boss["id"]

    # A cycle is still refused: the boss cannot report to their own report.
    cycle = patch({"op": "replace", "path": MANAGER_PATH, "value": {"value": report["id"]}})
    assert_scim_error(
        await api.patch(f"/scim/v2/Users/{boss['id']}", json=cycle, headers=key),
        400,
        "invalidValue",
    )
    # A reference by SCIM id to someone never provisioned is kept, not refused, too.
    body[ENTERPRISE]["manager"] = {"value": "00000000-0000-0000-0000-000000000000"}
    kept = await api.put(f"/scim/v2/Users/{report['id']}", json=body, headers=key)
    assert kept.status_code == 200, kept.text


async def test_entra_id_patch_dialect(api: httpx.AsyncClient, org: Org) -> None:
    _, key = org
    user = await created(api, key, person("entra", externalId=unique("EN")))
    boss = await created(api, key, person("entraboss"))
    url = f"/scim/v2/Users/{user['id']}"
    # Entra: capitalized ops, a value-filter path on emails, the manager as a bare id.
    answer = await api.patch(
        url,
        json=patch(
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "new@x.org"},
            {"op": "Replace", "path": "name.familyName", "value": "Byron"},
            {"op": "Add", "path": MANAGER_PATH, "value": boss["id"]},
        ),
        headers=key,
    )
    assert answer.status_code == 200, answer.text
    patched = answer.json()
    work = [e for e in patched["emails"] if e.get("type") == "work"]
    assert [e["value"] for e in work] == ["new@x.org"]
    assert patched["name"]["familyName"] == "Byron"
    assert patched[ENTERPRISE]["manager"]["value"] == boss["id"]
    employee = (await api.get(f"/v1/employees/{user['externalId']}", headers=key)).json()
    assert employee["email"] == "new@x.org" and employee["family_name"] == "Byron"

    # Entra: booleans as strings.
    off = await api.patch(
        url, json=patch({"op": "Replace", "path": "active", "value": "False"}), headers=key
    )
    assert off.status_code == 200, off.text
    assert off.json()["active"] is False
    employee = (await api.get(f"/v1/employees/{user['externalId']}", headers=key)).json()
    assert employee["employment_status"] == "inactive"

    # Okta: an `id` beside the operations, a path-less replace, a string boolean inside.
    okta = {
        "schemas": [PATCH_OP],
        "id": user["id"],
        "Operations": [{"op": "replace", "value": {"active": "True"}}],
    }
    on = await api.patch(url, json=okta, headers=key)
    assert on.status_code == 200, on.text
    assert on.json()["active"] is True

    # Strict where guessing would corrupt: a boolean that is no boolean, an unknown op.
    maybe = patch({"op": "replace", "path": "active", "value": "maybe"})
    assert_scim_error(await api.patch(url, json=maybe, headers=key), 400)
    unknown_op = patch({"op": "frobnicate", "path": "title", "value": "x"})
    assert_scim_error(await api.patch(url, json=unknown_op, headers=key), 400)
    assert (await api.get(url, headers=key)).json()["active"] is True


async def test_group_members_as_entra_and_okta_send_them(api: httpx.AsyncClient, org: Org) -> None:
    _, key = org
    ada = await created(api, key, person("gada"))
    bob = await created(api, key, person("gbob"))
    eve = await created(api, key, person("geve"))
    not_yet = "7d4f2b1c-0000-4000-8000-000000000000"
    group = await api.post(
        "/scim/v2/Groups",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": unique("Team"),
            "members": [{"value": ada["id"]}, {"value": not_yet}],
        },
        headers=key,
    )
    assert group.status_code == 201, group.text  # the unknown member is not a refusal
    assert [m["value"] for m in group.json()["members"]] == [ada["id"]]
    url = f"/scim/v2/Groups/{group.json()['id']}"

    # Entra adds with a null $ref and an `Add` op.
    add = patch(
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": bob["id"]}]},
        {"op": "add", "path": "members", "value": [{"value": eve["id"]}]},
    )
    assert (await api.patch(url, json=add, headers=key)).status_code == 200
    # Entra removes with a value list: only those members go, not the whole group.
    remove = patch({"op": "Remove", "path": "members", "value": [{"value": ada["id"]}]})
    answer = await api.patch(url, json=remove, headers=key)
    assert answer.status_code == 200, answer.text
    members = {m["value"] for m in (await api.get(url, headers=key)).json()["members"]}
    assert members == {bob["id"], eve["id"]}
    # Okta removes with a filter path.
    okta = patch({"op": "remove", "path": f'members[value eq "{bob["id"]}"]'})
    assert (await api.patch(url, json=okta, headers=key)).status_code == 200
    members = {m["value"] for m in (await api.get(url, headers=key)).json()["members"]}
    assert members == {eve["id"]}
    # Entra's membership check: a group by id with a member filter, members excluded.
    check = await api.get(
        "/scim/v2/Groups",
        params={
            "filter": f'id eq "{group.json()["id"]}" and members eq "{eve["id"]}"',
            "excludedAttributes": "members",
        },
        headers=key,
    )
    assert check.json()["totalResults"] == 1 and "members" not in check.json()["Resources"][0]


async def test_external_id_is_the_identity_providers_key_and_never_collides(
    api: httpx.AsyncClient, org: Org
) -> None:
    _, key = org
    shared = unique("DUP")
    first = await created(api, key, person("dup1", externalId=shared))
    second = await created(api, key, person("dup2", externalId=shared))
    none = await created(api, key, {k: v for k, v in person("noext").items()})
    assert len({first["id"], second["id"], none["id"]}) == 3
    assert second["externalId"] == shared and "externalId" not in none
    # The first took the key as its HRIS id; the others are keyed by their SCIM id.
    assert (await api.get(f"/v1/employees/{shared}", headers=key)).json()["id"] == first["id"]
    for user in (second, none):
        employee = await api.get(f"/v1/employees/{user['id']}", headers=key)
        assert employee.status_code == 200 and employee.json()["id"] == user["id"]
    found = await api.get(
        "/scim/v2/Users", params={"filter": f'externalId eq "{shared}"'}, headers=key
    )
    assert {u["id"] for u in found.json()["Resources"]} == {first["id"], second["id"]}
    # A userName that happens to be another employee's HRIS id takes nobody over.
    hris = (await api.put(f"/v1/employees/{unique('H')}", json={}, headers=key)).json()
    named = await created(api, key, scim_user(hris["external_id"]))
    assert named["id"] != hris["id"]


async def test_filters_run_in_sql_with_the_whole_grammar(api: httpx.AsyncClient, org: Org) -> None:
    _, key = org
    tag = unique("flt").lower()
    users = []
    for i, nick in enumerate(("alpha", "beta", "gamma")):
        users.append(await created(api, key, scim_user(f"{tag}-{nick}", nickName=nick)))
        if i == 0:
            between = users[0]["meta"]["lastModified"]

    async def ids(filter_: str) -> set[str]:
        answer = await api.get("/scim/v2/Users", params={"filter": filter_}, headers=key)
        assert answer.status_code == 200, f"{filter_}: {answer.text}"
        return {u["id"] for u in answer.json()["Resources"]}

    a, b, c = (u["id"] for u in users)
    assert await ids(f'USERNAME sw "{tag}-a"') == {a}
    assert await ids(f'userName sw "{tag}" and userName ew "mma"') == {c}
    assert await ids(f'userName co "{tag}-" and Emails.Value co "beta"') == {b}
    assert await ids(f'userName sw "{tag}" and (nickName eq "alpha" or nickName eq "gamma")') == {
        a,
        c,
    }
    assert await ids(f'userName sw "{tag}" and not (nickName eq "alpha")') == {b, c}
    assert await ids(f'userName sw "{tag}" and meta.lastModified gt "{between}"') == {b, c}
    assert await ids(f'userName sw "{tag}" and meta.created le "{between}"') == {a}
    assert await ids(f'userName sw "{tag}" and meta.created ge "{between}"') == {a, b, c}
    assert await ids(f'userName sw "{tag}" and emails[type eq "work" and value sw "{tag}-b"]') == {
        b
    }
    assert await ids(f'userName sw "{tag}" and phoneNumbers.value co "7946"') == {a, b, c}
    # Outside the translation: refused, never evaluated over the organization.
    outside = await api.get(
        "/scim/v2/Users", params={"filter": 'groups.value eq "x"', "count": 1}, headers=key
    )
    assert_scim_error(outside, 400, "invalidFilter")

    # The root search and POST /.search page in SQL too.
    root = await api.get("/scim/v2/", params={"count": 1}, headers=key)
    assert root.status_code == 200, root.text
    assert len(root.json()["Resources"]) == 1 and root.json()["totalResults"] >= 3
    searched = await api.post(
        "/scim/v2/.search",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": f'userName sw "{tag}"',
            "startIndex": 2,
            "count": 1,
        },
        headers=key,
    )
    assert searched.status_code == 200, searched.text
    assert searched.json()["totalResults"] == 3
    assert [r["id"] for r in searched.json()["Resources"]] == [b]


async def test_bounds_that_protect_other_tenants(api: httpx.AsyncClient, org: Org) -> None:
    _, key = org
    config = (await api.get("/scim/v2/ServiceProviderConfig", headers=key)).json()
    assert config["bulk"]["maxPayloadSize"] == 1_048_576

    huge = person("huge")
    huge["phoneNumbers"] = [{"value": f"+1 555 {i:07}", "type": "work"} for i in range(60_000)]
    body = json.dumps(huge).encode()
    assert len(body) > 1_048_576
    answer = await api.post("/scim/v2/Users", content=body, headers={**key, "content-type": SCIM})
    assert_scim_error(answer, 413)

    many = person("many")
    many["phoneNumbers"] = [{"value": f"+1 555 {i:07}"} for i in range(101)]
    assert_scim_error(await api.post("/scim/v2/Users", json=many, headers=key), 400, "invalidValue")
    fine = person("fine")
    fine["phoneNumbers"] = [{"value": f"+1 555 {i:07}"} for i in range(100)]
    assert (await api.post("/scim/v2/Users", json=fine, headers=key)).status_code == 201

    overflow = await api.get(
        "/scim/v2/Users", params={"startIndex": "99999999999999999999"}, headers=key
    )
    assert_scim_error(overflow, 400, "invalidValue")
    assert_scim_error(
        await api.post(
            "/scim/v2/Users/.search",
            json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                  "startIndex": 99999999999999999999},
            headers=key,
        ),
        400,
        "invalidValue",
    )  # fmt: skip
    assert USER in (await api.get("/scim/v2/Schemas", headers=key)).text
