"""Regression tests for the security review (issue 22) and the gateway's idempotency and
rate limits (issue 16), through the running gateway unless a finding is about reaching a
service directly."""

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from devstack.broker import Broker
from devstack.processes import free_port
from devstack.stack import Stack
from services.gateway import domain
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.db import drop_database
from shared.identity import Caller, sign_identity
from shared.settings import ServiceSettings
from tests.gateway.rawhttp import raw_request
from tests.helpers import create_org, direct_client, eventually

PROBLEM = "application/problem+json"


def _cursor(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


async def _key(
    api: httpx.AsyncClient, admin: dict[str, str], org_id: str, scopes: list[str] | None
) -> tuple[str, dict[str, str]]:
    body: dict[str, Any] = {"name": f"k-{uuid.uuid4().hex[:6]}"}
    if scopes is not None:
        body["scopes"] = scopes
    created = await api.post(f"/v1/organizations/{org_id}/api-keys", json=body, headers=admin)
    assert created.status_code == 201, created.text
    return created.json()["id"], {"Authorization": f"Bearer {created.json()['key']}"}


# --- 1. path traversal ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", "/v1/programs/../employees"),
        ("PUT", "/v1/programs/..%2Femployees/A-1"),
        ("DELETE", "/v1/programs/../employees/A-1"),
        ("GET", "/v1/programs/%2e%2e/employees"),
        ("GET", "/v1/programs/.%2E/employees"),
        ("GET", "/v1/programs/./../employees"),
        ("GET", "/v1/programs/..%5Cemployees"),
        ("GET", "/v1/programs/..\\employees"),
        ("GET", "/v1/programs/../../metrics"),
        ("GET", "/scim/v2/../../v1/employees"),
    ],
)
async def test_dot_segments_and_encoded_slashes_are_refused(
    stack: Stack, api: httpx.AsyncClient, admin: dict[str, str], method: str, target: str
) -> None:
    org_id, full = await create_org(api, admin)
    assert (await api.put("/v1/employees/A-1", json={}, headers=full)).status_code == 201
    _, programs_only = await _key(api, admin, org_id, ["programs", "scim:read"])
    response = await raw_request(stack.url(), method, target, programs_only, b"{}")
    assert response.status == 400, (target, response.status, response.body)
    assert response.headers["content-type"] == PROBLEM
    # The employee is untouched.
    employee = await api.get("/v1/employees/A-1", headers=full)
    assert employee.status_code == 200 and employee.json()["employment_status"] == "active"


async def test_the_path_is_forwarded_exactly_as_sent(
    stack: Stack, api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    _, key = org
    json_key = {**key, "content-type": "application/json"}
    put = await raw_request(stack.url(), "PUT", "/v1/employees/A%20B%252e", json_key, b"{}")
    assert put.status == 201, put.body
    assert put.json()["external_id"] == "A B%2e"
    got = await api.get("/v1/employees/A%20B%252e", headers=key)
    assert got.status_code == 200 and got.json()["external_id"] == "A B%2e"


# --- 5 (item 7). services trust only the gateway's signed identity --------------------


def _identity(org_id: str, scopes: str = "*") -> dict[str, str]:
    return Caller(org_id=uuid.UUID(org_id), is_admin=False, scopes=(scopes,)).headers()


async def test_services_refuse_forged_identity_headers(
    stack: Stack, api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    org_id, key = org
    assert (await api.put("/v1/employees/F-1", json={}, headers=key)).status_code == 201
    async with httpx.AsyncClient(base_url=stack.url("profiles"), timeout=15) as direct:
        forged = await direct.get("/v1/employees/F-1", headers=_identity(org_id))
        assert forged.status_code == 401 and forged.headers["content-type"] == PROBLEM
        admin = await direct.post(
            "/v1/organizations", json={"name": "x"}, headers={"x-mentorbus-admin": "true"}
        )
        assert admin.status_code == 401

        def signed(target: bytes, secret: str = stack.identity_secret, ttl: int = 30) -> Any:
            return sign_identity(
                _identity(org_id), method="GET", target=target, secret=secret, ttl_seconds=ttl
            )

        ok = await direct.get("/v1/employees/F-1", headers=signed(b"/v1/employees/F-1"))
        assert ok.status_code == 200  # the real signature works ...
        for headers in (
            signed(b"/v1/employees/F-1", secret="another-secret-" * 3),  # ... a forged one not
            signed(b"/v1/employees/OTHER"),  # signed for another request
            signed(b"/v1/employees/F-1", ttl=-5),  # expired
        ):
            refused = await direct.get("/v1/employees/F-1", headers=headers)
            assert refused.status_code == 401, refused.text
        # Services check scopes too: a signed identity without `employees` cannot read them.
        narrow = sign_identity(
            _identity(org_id, "programs"),
            method="GET",
            target=b"/v1/employees/F-1",
            secret=stack.identity_secret,
            ttl_seconds=30,
        )
        assert (await direct.get("/v1/employees/F-1", headers=narrow)).status_code == 403
        no_scim = sign_identity(
            _identity(org_id, "employees"),
            method="GET",
            target=b"/scim/v2/Users",
            secret=stack.identity_secret,
            ttl_seconds=30,
        )
        assert (await direct.get("/scim/v2/Users", headers=no_scim)).status_code == 403
    # The tests' helper signs as the gateway does (for tests that act as a member directly).
    async with direct_client(stack, "profiles") as signing:
        signed_get = await signing.get("/v1/employees/F-1", headers=_identity(org_id))
        assert signed_get.status_code == 200


def test_production_refuses_the_development_identity_secret() -> None:
    with pytest.raises(ValueError, match="IDENTITY_SECRET"):
        ServiceSettings(environment="production")
    with pytest.raises(ValueError, match="IDENTITY_SECRET"):
        ServiceSettings(environment="production", identity_secret="replace-me-" * 4)
    ServiceSettings(environment="production", identity_secret=uuid.uuid4().hex + uuid.uuid4().hex)


# --- 2. managing API keys -------------------------------------------------------------


async def test_managing_keys_needs_the_keys_scope_and_never_widens(
    api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    org_id, _ = await create_org(api, admin)
    full_id, full = await _key(api, admin, org_id, None)
    reader_id, reader = await _key(api, admin, org_id, ["matching:read"])
    manager_id, manager = await _key(api, admin, org_id, ["keys", "matching"])
    listed = await api.get("/v1/api-keys", headers=reader)
    assert listed.status_code == 403 and "keys:read" in listed.json()["detail"]
    assert (await api.delete(f"/v1/api-keys/{full_id}", headers=reader)).status_code == 403
    # A manager sees the keys but cannot revoke a wider one ...
    keys = (await api.get("/v1/api-keys", headers=manager)).json()["items"]
    assert {k["id"]: k["scopes"] for k in keys}[full_id] == ["*"]
    assert (await api.delete(f"/v1/api-keys/{full_id}", headers=manager)).status_code == 403
    assert (await api.get("/v1/api-keys", headers=full)).status_code == 200
    # ... only narrower ones (and `*` revokes anything).
    assert (await api.delete(f"/v1/api-keys/{reader_id}", headers=manager)).status_code == 204
    assert (await api.delete(f"/v1/api-keys/{manager_id}", headers=full)).status_code == 204
    assert (await api.get("/v1/api-keys", headers=manager)).status_code == 401


async def test_key_scopes_are_named_or_star(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    org_id, _ = await create_org(api, admin)
    created = await api.post(
        f"/v1/organizations/{org_id}/api-keys", json={"name": "all"}, headers=admin
    )
    assert created.json()["scopes"] == ["*"]
    empty = await api.post(
        f"/v1/organizations/{org_id}/api-keys", json={"name": "none", "scopes": []}, headers=admin
    )
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "scopes"
    star = await api.post(
        f"/v1/organizations/{org_id}/api-keys", json={"name": "s", "scopes": ["*"]}, headers=admin
    )
    assert star.status_code == 201 and star.json()["scopes"] == ["*"]


# --- 3. per-route body limits ---------------------------------------------------------


async def test_each_route_has_its_own_body_limit(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    _, key = org
    headers = {**key, "content-type": "application/json"}
    small = json.dumps({"attributes": {"x": "y" * 300_000}}).encode()
    assert (await api.put("/v1/employees/B-1", content=small, headers=headers)).status_code == 413
    run = await api.post(
        f"/v1/programs/{uuid.uuid4()}/matching-runs", content=small, headers=headers
    )
    assert run.status_code == 413
    # Bulk accepts far more than other routes (its records are then checked one by one).
    bulk = {"employees": [{"external_id": f"B-{i}", "title": "t" * 1000} for i in range(400)]}
    answer = await api.post("/v1/employees/bulk", json=bulk, headers=key)
    assert answer.status_code == 200, answer.text
    scim = json.dumps({"userName": "u", "displayName": "d" * 1_100_000}).encode()
    too_big = await api.post(
        "/scim/v2/Users", content=scim, headers={**key, "content-type": "application/scim+json"}
    )
    assert too_big.status_code == 413


# --- 7 (item 9). paging values --------------------------------------------------------


async def test_bad_cursors_and_limits_are_422(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    _, key = org
    for path, cursor in (
        ("/v1/api-keys", _cursor({"id": "nope"})),
        ("/v1/api-keys", _cursor({})),
        ("/v1/employees", _cursor({"other": 1})),
        ("/v1/programs", _cursor({"created_at": "yesterday", "id": "x"})),
        ("/v1/matches", _cursor({"created_at": "2026-01-01T00:00:00+00:00", "id": 7})),
        ("/v1/employees", "x" * 5000),
    ):
        response = await api.get(path, params={"cursor": cursor}, headers=key)
        assert response.status_code == 422, (path, cursor[:40], response.text)
        assert response.json()["errors"][0]["field"] == "cursor"
    huge = await api.get("/v1/employees", params={"limit": 10**20}, headers=key)
    assert huge.status_code == 422 and huge.json()["errors"][0]["field"] == "limit"


# --- 8 (item 10). a client that disconnects mid-body ----------------------------------


async def test_a_client_hanging_up_mid_body_is_one_quiet_line(
    stack: Stack, org: tuple[str, dict[str, str]]
) -> None:
    _, key = org
    log_path = stack.processes["gateway"].log_path
    before = log_path.read_text(errors="replace")
    marker = f"/v1/employees/HANGUP-{uuid.uuid4().hex[:6]}"
    _, writer = await asyncio.open_connection("127.0.0.1", stack.ports["gateway"])
    head = f"PUT {marker} HTTP/1.1\r\nHost: x\r\n{'Authorization'}: {key['Authorization']}\r\n"
    writer.write(f"{head}Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n".encode())
    writer.write(b'{"email": ')
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.close()

    async def logged() -> str:
        text = log_path.read_text(errors="replace")[len(before) :]
        return text if marker in text else ""

    new = await eventually(logged, timeout=10)
    await asyncio.sleep(0.5)  # anything else it would log about this request
    new = log_path.read_text(errors="replace")[len(before) :]
    assert "Traceback" not in new and "unhandled error" not in new
    assert len([line for line in new.splitlines() if marker in line]) == 1


# --- 9 (item 11). operator-only metrics -----------------------------------------------


async def test_gateway_metrics_are_on_the_operator_port_only(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    assert (await api.get("/metrics")).status_code == 404
    async with httpx.AsyncClient(timeout=15) as client:
        scraped = await client.get(f"http://127.0.0.1:{stack.metrics_port}/metrics")
    assert scraped.status_code == 200 and "mentorbus_http_requests_total" in scraped.text


# --- 10. Idempotency-Key and rate limits, through the running gateway ----------------


async def test_a_post_retried_with_its_idempotency_key_is_replayed(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    _, key = org
    headers = {**key, "Idempotency-Key": uuid.uuid4().hex}
    body = {"name": "Spring cohort", "format": "one_to_one"}
    first = await api.post("/v1/programs", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = await api.post("/v1/programs", json=body, headers=headers)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    listed = (await api.get("/v1/programs", headers=key)).json()["items"]
    assert [p["id"] for p in listed] == [first.json()["id"]]
    other = await api.post("/v1/programs", json={**body, "name": "Other"}, headers=headers)
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_answers_carry_rate_limit_headers(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    response = await api.get("/v1/employees", headers=org[1])
    assert response.headers["ratelimit-policy"].startswith('"key";q=')
    assert response.headers["ratelimit"].startswith('"key";r=')


# --- two gateway replicas on one database (no services behind them) -------------------


@pytest.fixture
async def replicas(
    broker: Broker,
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, str, str]]:
    """Two gateway replicas sharing one database, whose matching hangs (0.5 s, then 504)
    and whose profiles is down; with small budgets. Yields both clients and two keys of one
    organization."""
    hung: list[asyncio.StreamWriter] = []

    async def hang(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hung.append(writer)

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    settings = GatewaySettings(
        database_url=f"postgresql+asyncpg://postgres@127.0.0.1:5432/mbtest_gw_{uuid.uuid4().hex[:8]}",
        kafka_bootstrap_servers=broker.bootstrap_servers,
        admin_token="a" * 32,
        profiles_url=f"http://127.0.0.1:{free_port()}",
        matching_url=f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}",
        upstream_timeout_seconds=0.5,
        rate_limit_requests=5,
        rate_limit_bulk=2,
    )
    first, second = create_app(settings), create_app(settings)
    async with first.router.lifespan_context(first), second.router.lifespan_context(second):
        org = uuid.uuid4()
        async with first.state.sessionmaker() as session, session.begin():
            _, key_a = await domain.issue_api_key(session, org, "a", ["*"])
            _, key_b = await domain.issue_api_key(session, org, "b", ["*"])
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://a") as a,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://b") as b,
        ):
            yield a, b, key_a, key_b
    for writer in hung:
        writer.close()
    server.close()
    await drop_database(settings.database_url)


async def test_rate_limits_hold_across_replicas(
    replicas: tuple[httpx.AsyncClient, httpx.AsyncClient, str, str],
) -> None:
    a, b, key_a, key_b = replicas
    auth = {"Authorization": f"Bearer {key_a}"}
    answers = [await (a if i % 2 else b).get("/v1/employees", headers=auth) for i in range(6)]
    assert [r.status_code for r in answers] == [503] * 5 + [429]
    assert answers[0].headers["ratelimit-policy"] == '"key";q=5;w=60'
    assert answers[3].headers["ratelimit"].startswith('"key";r=1;t=')
    over = answers[5]
    assert over.headers["content-type"] == PROBLEM and int(over.headers["retry-after"]) >= 1
    # Another key of the same organization has its own budget ...
    other = {"Authorization": f"Bearer {key_b}"}
    assert (await b.get("/v1/employees", headers=other)).status_code == 503
    # ... but bulk syncs draw from the organization's budget, whichever key sends them.
    bulk = [
        await client.post("/v1/employees/bulk", json={"employees": []}, headers=other)
        for client in (a, b, a)
    ]
    assert [r.status_code for r in bulk] == [503, 503, 429]
    assert '"bulk";q=2;w=60' in bulk[0].headers["ratelimit-policy"]


async def test_idempotency_is_shared_by_replicas_and_409_while_running(
    replicas: tuple[httpx.AsyncClient, httpx.AsyncClient, str, str],
) -> None:
    a, b, key_a, _ = replicas
    headers = {"Authorization": f"Bearer {key_a}", "Idempotency-Key": "run-1"}
    path = f"/v1/programs/{uuid.uuid4()}/matching-runs"
    slow = asyncio.create_task(a.post(path, json={"objective": "max_score"}, headers=headers))
    await asyncio.sleep(0.2)
    running = await b.post(path, json={"objective": "max_score"}, headers=headers)
    assert running.status_code == 409 and running.headers["content-type"] == PROBLEM
    assert (await slow).status_code == 504
    # A failed first attempt is not stored: the retry runs again (and fails again here).
    started = time.monotonic()
    retry = await b.post(path, json={"objective": "max_score"}, headers=headers)
    assert retry.status_code == 504 and time.monotonic() - started >= 0.4
    bad = await a.post(path, json={}, headers={**headers, "Idempotency-Key": ""})
    assert bad.status_code == 422


# --- 4 (item 6). attributes per record are capped ------------------------------------


async def test_attributes_per_employee_are_capped(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    _, key = org
    big = {"notes": "x" * 15_000}  # the review's 15 KB per record
    put = await api.put("/v1/employees/AT-1", json={"attributes": big}, headers=key)
    assert put.status_code == 422 and put.json()["errors"][0]["field"] == "attributes"
    records = [{"external_id": "AT-2", "attributes": big}, {"external_id": "AT-3"}]
    bulk = (await api.post("/v1/employees/bulk", json={"employees": records}, headers=key)).json()
    assert [r["status"] for r in bulk["results"]] == ["error", "created"]
    assert bulk["results"][0]["errors"][0]["field"] == "attributes"
