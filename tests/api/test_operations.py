"""Operations at the public door: request ids end to end, JSON logs, CORS, metrics."""

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from devstack.broker import Broker
from devstack.stack import Stack
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.db import drop_database
from shared.logs import JsonFormatter, request_id

ORIGIN = "https://app.mentorbus.test"


async def test_request_id_is_kept_or_made(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    _, key = org
    given = await api.get("/v1/employees", headers={**key, "X-Request-Id": "req-42"})
    assert given.headers["x-request-id"] == "req-42"
    made = await api.get("/v1/employees", headers=key)
    assert len(made.headers["x-request-id"]) == 32
    unsafe = await api.get("/v1/employees", headers={**key, "X-Request-Id": "a b\tc" * 50})
    assert unsafe.headers["x-request-id"] != "a b\tc" * 50


def test_log_lines_are_json_with_the_request_id() -> None:
    formatter = JsonFormatter("profiles")
    record = logging.makeLogRecord(
        {"name": "x", "levelname": "WARNING", "msg": "hello %s", "args": ("you",), "user": 7}
    )
    token = request_id.set("req-7")
    try:
        line = json.loads(formatter.format(record))
    finally:
        request_id.reset(token)
    assert line["message"] == "hello you" and line["request_id"] == "req-7"
    assert line["service"] == "profiles" and line["level"] == "warning" and line["user"] == 7


def test_service_logs_are_json(log_dir: Path, api: httpx.AsyncClient) -> None:
    lines = [ln for ln in (log_dir / "profiles.log").read_text().splitlines() if ln.startswith("{")]
    assert lines, "profiles wrote no JSON log line"
    assert all(json.loads(ln)["service"] == "profiles" for ln in lines)


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[int, list[dict[str, str]]]]:
    """A stand-in service that records the headers of each request and answers 200."""
    seen: list[dict[str, str]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")[1:]
        seen.append({k.lower(): v.strip() for k, _, v in (h.partition(":") for h in head if h)})
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
        writer.write(b"content-length: 2\r\nconnection: close\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], seen
    server.close()


async def test_request_id_reaches_the_service(
    broker: Broker, upstream: tuple[int, list[dict[str, str]]]
) -> None:
    port, seen = upstream
    settings = GatewaySettings(
        database_url=f"postgresql+asyncpg://postgres@127.0.0.1:5432/mbtest_gw_{uuid.uuid4().hex[:8]}",
        kafka_bootstrap_servers=broker.bootstrap_servers,
        admin_token="a" * 32,
        profiles_url=f"http://127.0.0.1:{port}",
        cors_origins=f"{ORIGIN}, https://other.test",
    )
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                admin = {"Authorization": "Bearer " + "a" * 32}
                answer = await client.get(f"/v1/organizations/{uuid.uuid4()}", headers=admin)
                assert answer.status_code == 200
                assert seen[-1]["x-request-id"] == answer.headers["x-request-id"]

                preflight = await client.options(
                    "/v1/employees",
                    headers={
                        "Origin": ORIGIN,
                        "Access-Control-Request-Method": "PUT",
                        "Access-Control-Request-Headers": "authorization, if-match",
                    },
                )
                assert preflight.status_code == 200
                assert preflight.headers["access-control-allow-origin"] == ORIGIN
                refused = await client.options(
                    "/v1/employees",
                    headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "GET"},
                )
                assert "access-control-allow-origin" not in refused.headers
    finally:
        await drop_database(settings.database_url)


async def test_metrics_count_requests_per_route(
    stack: Stack, api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    _, key = org
    await api.get("/v1/employees/E-404", headers=key)
    # The gateway's metrics are on its operator port only (never on the public one).
    assert (await api.get("/metrics")).status_code == 404
    async with httpx.AsyncClient() as operator:
        gateway = (await operator.get(f"http://127.0.0.1:{stack.metrics_port}/metrics")).text
    assert 'method="GET",route="^/v1/employees/{id}$",service="gateway",status="404"' in gateway
    async with httpx.AsyncClient(base_url=stack.url("profiles")) as profiles:
        own = (await profiles.get("/metrics")).text
    labels = 'method="GET",route="/v1/employees/{external_id}",service="profiles",status="404"'
    assert labels in own
