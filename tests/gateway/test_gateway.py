"""The gateway: authentication, scopes, tenant confinement, and clear answers when the
service behind a path is down or slow."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from devstack.broker import Broker
from devstack.processes import free_port
from services.gateway import domain
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.db import drop_database
from tests.helpers import create_org

PROBLEM = "application/problem+json"


async def test_requests_without_valid_credentials_are_401(api: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        response = await api.get("/v1/employees", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["status"] == 401


async def test_only_the_admin_creates_organizations_and_keys(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    org_id, key = org
    assert (await api.post("/v1/organizations", json={"name": "x"}, headers=key)).status_code == 403
    response = await api.post(
        f"/v1/organizations/{org_id}/api-keys", json={"name": "k"}, headers=key
    )
    assert response.status_code == 403


async def test_api_key_for_unknown_organization_is_404(
    api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await api.post(
        f"/v1/organizations/{uuid.uuid4()}/api-keys", json={"name": "k"}, headers=admin
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


async def test_organization_body_is_validated(
    api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await api.post("/v1/organizations", json={"name": ""}, headers=admin)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "name"


async def test_admin_needs_an_organization_key_for_tenant_data(
    api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert (await api.get("/v1/employees", headers=admin)).status_code == 403


async def test_revoked_key_stops_working_at_once(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    _, key = org
    keys = (await api.get("/v1/api-keys", headers=key)).json()
    assert len(keys["items"]) == 1 and "key" not in keys["items"][0]
    key_id = keys["items"][0]["id"]
    assert (await api.get("/v1/employees", headers=key)).status_code == 200
    assert (await api.delete(f"/v1/api-keys/{key_id}", headers=key)).status_code == 204
    assert (await api.get("/v1/employees", headers=key)).status_code == 401


async def test_api_keys_list_paginates(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    org_id, key = await create_org(api, admin)
    for name in ("second", "third"):
        created = await api.post(
            f"/v1/organizations/{org_id}/api-keys", json={"name": name}, headers=admin
        )
        assert created.status_code == 201
    first = (await api.get("/v1/api-keys", params={"limit": 2}, headers=key)).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = (
        await api.get(
            "/v1/api-keys", params={"limit": 2, "cursor": first["next_cursor"]}, headers=key
        )
    ).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    ids = {k["id"] for k in first["items"] + rest["items"]}
    assert len(ids) == 3
    bad = await api.get("/v1/api-keys", params={"cursor": "%%%"}, headers=key)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"


async def test_scopes_limit_what_a_key_may_do(
    api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    _, reader = await create_org(api, admin, scopes=["employees:read"])
    assert (await api.get("/v1/employees", headers=reader)).status_code == 200
    denied = await api.put("/v1/employees/E-1", json={}, headers=reader)
    assert denied.status_code == 403 and "employees:write" in denied.json()["detail"]
    org_id, _ = await create_org(api, admin)
    bad = await api.post(
        f"/v1/organizations/{org_id}/api-keys",
        json={"name": "k", "scopes": ["root"]},
        headers=admin,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "scopes"


async def test_another_organizations_data_is_404(
    api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    org_a, key_a = await create_org(api, admin)
    _, key_b = await create_org(api, admin)
    assert (await api.put("/v1/employees/E-9", json={}, headers=key_a)).status_code == 201
    assert (await api.get("/v1/employees/E-9", headers=key_a)).status_code == 200
    assert (await api.get("/v1/employees/E-9", headers=key_b)).status_code == 404
    assert (await api.get(f"/v1/organizations/{org_a}", headers=key_b)).status_code == 404
    assert (await api.get(f"/v1/organizations/{org_a}", headers=key_a)).status_code == 200


async def test_identity_headers_from_clients_are_ignored(
    api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    org_a, key_a = await create_org(api, admin)
    _, key_b = await create_org(api, admin)
    await api.put("/v1/employees/E-7", json={}, headers=key_a)
    spoofed = {**key_b, "X-Mentorbus-Org-Id": org_a, "X-Mentorbus-Admin": "true"}
    assert (await api.get("/v1/employees/E-7", headers=spoofed)).status_code == 404


async def test_unknown_paths_are_problem_404(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    response = await api.get("/v1/nothing-here", headers=org[1])
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


async def test_malformed_json_is_422_naming_the_body(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    headers = {**org[1], "content-type": "application/json"}
    response = await api.put("/v1/employees/E-1", content=b"{not json", headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body"


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A port that accepts connections and never answers (a hung service)."""
    connections: list[asyncio.StreamWriter] = []

    async def hang(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in connections:
        writer.close()
    server.close()


@pytest.fixture
async def lonely_gateway(
    broker: Broker, silent_server: int
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """A gateway whose profiles is down (nothing listens) and whose matching hangs."""
    settings = GatewaySettings(
        database_url=f"postgresql+asyncpg://postgres@127.0.0.1:5432/mbtest_gw_{uuid.uuid4().hex[:8]}",
        kafka_bootstrap_servers=broker.bootstrap_servers,
        admin_token="a" * 32,
        profiles_url=f"http://127.0.0.1:{free_port()}",
        matching_url=f"http://127.0.0.1:{silent_server}",
        upstream_timeout_seconds=0.5,
        max_body_bytes=1024,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with app.state.sessionmaker() as session, session.begin():
            _, key = await domain.issue_api_key(session, uuid.uuid4(), "k", ["*"])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield client, {"Authorization": f"Bearer {key}"}
    await drop_database(settings.database_url)


async def test_service_down_is_503_and_slow_service_is_504(
    lonely_gateway: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, key = lonely_gateway
    down = await client.get("/v1/employees", headers=key)
    assert down.status_code == 503
    assert down.headers["content-type"] == PROBLEM
    assert "profiles" in down.json()["detail"]
    slow = await client.get("/v1/matches", headers=key)
    assert slow.status_code == 504
    assert slow.headers["content-type"] == PROBLEM


async def test_oversized_bodies_are_413(
    lonely_gateway: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, key = lonely_gateway
    response = await client.put("/v1/employees/E-1", content=b"x" * 2048, headers=key)
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM


def _refs(node: object) -> set[str]:
    if isinstance(node, dict):
        own = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return own.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


async def test_openapi_covers_the_whole_public_api(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    paths = set(spec["paths"])
    assert {
        "/v1/organizations/{org_id}/api-keys",  # the gateway's own
        "/v1/employees/{external_id}",  # profiles
        "/v1/programs/{program_id}/enrollments",  # profiles
        "/v1/matches",  # matching
        "/v1/programs/{program_id}/matching-runs",  # matching
    } <= paths
    # Each service's own operations endpoints are not part of the public API.
    assert "/metrics" not in paths
    schemas = spec["components"]["schemas"]
    for ref in _refs(spec["paths"]):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


async def test_docs_render_with_assets_from_the_gateway(api: httpx.AsyncClient) -> None:
    page = await api.get("/docs")
    assert page.status_code == 200
    assert "https://" not in page.text and "/openapi.json" in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/docs/assets/{asset}" in page.text
        assert (await api.get(f"/docs/assets/{asset}")).status_code == 200
