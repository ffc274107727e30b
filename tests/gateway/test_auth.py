"""Gateway authentication: end-user JWTs (PEM key on the test stack, JWKS in-process) and
the bounded cache of verified API keys."""

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncpg
import httpx
import jwt
import pytest

from devstack.broker import Broker
from devstack.processes import free_port
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.db import drop_database
from tests.helpers import TokenIssuer, create_org

Connect = Callable[[str], Awaitable[asyncpg.Connection]]


async def test_end_user_tokens_are_checked(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]], identity_provider: TokenIssuer
) -> None:
    org_id, key = org
    await api.put("/v1/employees/U-1", json={"email": "u1@acme.com"}, headers=key)
    idp = identity_provider
    good = idp.headers(org_id, "U-1")
    assert (await api.get("/v1/employees/U-1", headers=good)).status_code == 200
    stranger = TokenIssuer()  # same claims, another signing key
    now = int(time.time())
    bad_tokens = [
        idp.token(org_id, "U-1", aud="someone-else"),
        idp.token(org_id, "U-1", iss="https://evil.test"),
        idp.token(org_id, "U-1", exp=now - 3600, iat=now - 7200),
        idp.token(org_id, "U-1", role="owner"),
        idp.token("not-an-org", "U-1"),
        stranger.token(org_id, "U-1"),
        jwt.encode({"sub": "U-1", "org_id": org_id, "role": "admin"}, "k" * 32, "HS256"),
    ]
    for token in bad_tokens:
        response = await api.get("/v1/employees/U-1", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_token_is_confined_to_its_organization(
    api: httpx.AsyncClient, admin: dict[str, str], identity_provider: TokenIssuer
) -> None:
    org_a, key_a = await create_org(api, admin)
    org_b, _ = await create_org(api, admin)
    await api.put("/v1/employees/U-2", json={"email": "u2@acme.com"}, headers=key_a)
    as_admin_of_b = identity_provider.headers(org_b, "U-2", role="admin")
    assert (await api.get("/v1/employees/U-2", headers=as_admin_of_b)).status_code == 404
    as_admin_of_a = identity_provider.headers(org_a, "someone", role="admin")
    listed = await api.get("/v1/employees", headers=as_admin_of_a)
    assert listed.status_code == 200 and [e["external_id"] for e in listed.json()["items"]] == [
        "U-2"
    ]


async def test_a_key_revoked_elsewhere_stops_working_within_the_cache_time(
    api: httpx.AsyncClient, admin: dict[str, str], service_db: Connect
) -> None:
    _, key = await create_org(api, admin)
    assert (await api.get("/v1/employees", headers=key)).status_code == 200  # now cached
    key_id = uuid.UUID(hex=key["Authorization"].split("_")[1])
    # As another gateway replica would: revoked in the database, this replica not told.
    conn = await service_db("gateway")
    try:
        await conn.execute("UPDATE api_key SET revoked_at = now() WHERE id = $1", key_id)
    finally:
        await conn.close()
    revoked_at = time.monotonic()
    ttl = GatewaySettings().api_key_cache_seconds
    while (await api.get("/v1/employees", headers=key)).status_code == 200:
        assert time.monotonic() - revoked_at < ttl + 2, "a revoked key outlived the cache time"
        await asyncio.sleep(0.2)
    assert (await api.get("/v1/employees", headers=key)).status_code == 401


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, TokenIssuer]]:
    """An identity provider publishing its key set (JWKS) over HTTP on this machine."""
    idp = TokenIssuer()
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(idp.private_key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "ES256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json", idp
    server.shutdown()
    server.server_close()


@pytest.fixture
async def jwks_gateway(
    broker: Broker, jwks_server: tuple[str, TokenIssuer]
) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway trusting a JWKS URL, its services down (an authenticated call is a 503)."""
    url, idp = jwks_server
    settings = GatewaySettings(
        database_url=f"postgresql+asyncpg://postgres@127.0.0.1:5432/mbtest_gw_{uuid.uuid4().hex[:8]}",
        kafka_bootstrap_servers=broker.bootstrap_servers,
        profiles_url=f"http://127.0.0.1:{free_port()}",
        jwt_jwks_url=url,
        jwt_issuer=idp.issuer,
        jwt_audience=idp.audience,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield client
    await drop_database(settings.database_url)


async def test_tokens_are_checked_against_a_jwks_url(
    jwks_gateway: httpx.AsyncClient, jwks_server: tuple[str, TokenIssuer]
) -> None:
    _, idp = jwks_server
    org_id = str(uuid.uuid4())
    good = jwt.encode(
        {"iss": idp.issuer, "aud": idp.audience, "sub": "E-1", "org_id": org_id,
         "role": "member", "exp": int(time.time()) + 60},
        idp.private_key, algorithm="ES256", headers={"kid": "k1"},
    )  # fmt: skip
    passed = await jwks_gateway.get(
        "/v1/employees/E-1", headers={"Authorization": f"Bearer {good}"}
    )
    assert passed.status_code == 503  # authenticated; profiles is down in this setup
    forged = TokenIssuer().token(org_id, "E-1")
    refused = await jwks_gateway.get(
        "/v1/employees/E-1", headers={"Authorization": f"Bearer {forged}"}
    )
    assert refused.status_code == 401
