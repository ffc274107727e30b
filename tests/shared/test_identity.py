"""The signed identity and the scope check services apply, on a bare app (no stack)."""

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from shared.errors import install_problem_handlers
from shared.identity import (
    Caller,
    IdentityMiddleware,
    OrgCaller,
    ScopeGuard,
    request_target,
    require_scope,
    sign_identity,
)

SECRET = "test-identity-secret-" + uuid.uuid4().hex
ORG = uuid.uuid4()


def _app() -> FastAPI:
    router = APIRouter(dependencies=[require_scope("employees")])

    @router.api_route("/v1/employees", methods=["GET", "POST"])
    async def employees(caller: OrgCaller) -> dict[str, str | None]:
        return {"role": caller.role, "subject": caller.subject}

    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(IdentityMiddleware, secret=SECRET)
    app.include_router(router)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    scim = FastAPI()

    @scim.get("/v2/Users")
    async def users() -> dict[str, str]:
        return {"ok": "yes"}

    app.mount("/scim", ScopeGuard(scim, "scim"))
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as c:
        yield c


def _signed(caller: Caller, method: str, target: bytes, secret: str = SECRET) -> dict[str, str]:
    return sign_identity(
        caller.headers(), method=method, target=target, secret=secret, ttl_seconds=30
    )


async def test_scopes_limit_api_keys_and_roles_limit_end_users(
    client: httpx.AsyncClient,
) -> None:
    async def status(caller: Caller, method: str = "GET") -> int:
        headers = _signed(caller, method, b"/v1/employees")
        return (await client.request(method, "/v1/employees", headers=headers)).status_code

    reader = Caller(ORG, False, scopes=("employees:read",))
    assert await status(reader) == 200
    denied = await client.post("/v1/employees", headers=_signed(reader, "POST", b"/v1/employees"))
    assert denied.status_code == 403 and "employees:write" in denied.json()["detail"]
    other = Caller(ORG, False, scopes=("programs",))
    assert await status(other) == 403
    assert await status(Caller(ORG, False, scopes=("*",)), "POST") == 200
    # An end user carries no scopes: their role's rules apply instead.
    member = Caller(ORG, False, subject="E-1", role="member")
    answer = await client.get("/v1/employees", headers=_signed(member, "GET", b"/v1/employees"))
    assert answer.status_code == 200 and answer.json() == {"role": "member", "subject": "E-1"}
    # The mounted SCIM app checks its family too.
    scim = await client.get("/scim/v2/Users", headers=_signed(other, "GET", b"/scim/v2/Users"))
    assert scim.status_code == 403
    scim_key = Caller(ORG, False, scopes=("scim:read",))
    ok = await client.get("/scim/v2/Users", headers=_signed(scim_key, "GET", b"/scim/v2/Users"))
    assert ok.status_code == 200


async def test_only_a_valid_signature_for_this_very_request_names_a_caller(
    client: httpx.AsyncClient,
) -> None:
    star = Caller(ORG, False, scopes=("*",))
    target = request_target(b"/v1/employees", b"limit=5")
    good = _signed(star, "GET", target)
    assert (await client.get("/v1/employees?limit=5", headers=good)).status_code == 200
    for headers in (
        star.headers(),  # unsigned
        _signed(star, "GET", target, secret="not-the-secret"),  # forged
        _signed(star, "GET", b"/v1/employees?limit=6"),  # another query
        _signed(star, "POST", target),  # another method
        {**good, "x-mentorbus-admin": "true"},  # tampered after signing
        {**good, "x-mentorbus-identity-expires": "1"},  # expiry changed
    ):
        refused = await client.get("/v1/employees?limit=5", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["content-type"] == "application/problem+json"
    expired = sign_identity(
        star.headers(), method="GET", target=target, secret=SECRET, ttl_seconds=-1
    )
    assert (await client.get("/v1/employees?limit=5", headers=expired)).status_code == 401
    # No identity at all: anonymous, fine for operations endpoints, 401 on tenant routes.
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/v1/employees")).status_code == 401
