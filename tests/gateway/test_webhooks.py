"""Webhooks end to end: a real receiver on loopback (the test stack allows private
targets) verifies every delivery's Standard Webhooks signature."""

import asyncio
import json
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from devstack.processes import free_port
from services.gateway.webhooks.delivery import open_http_session, post_signed
from services.gateway.webhooks.domain import Claimed
from services.gateway.webhooks.settings import WebhookSettings
from services.gateway.webhooks.ssrf import check_url
from shared.events import event_models
from tests.helpers import create_org, eventually

NODE_TOOLS = Path(__file__).resolve().parents[2] / "tools" / "node"


@dataclass
class Received:
    """One POST the receiver got, and what it answered."""

    headers: dict[str, str]
    body: str
    status: int

    @property
    def event(self) -> dict[str, Any]:
        """The CloudEvent posted."""
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """An HTTP receiver on 127.0.0.1: `/hook/<name>` answers the statuses planned for that
    name in turn (then `default[name]`, else 200) and records each request."""

    base: str
    received: dict[str, list[Received]] = field(default_factory=dict)
    plan: dict[str, list[int]] = field(default_factory=dict)
    default: dict[str, int] = field(default_factory=dict)

    def url(self, name: str) -> str:
        """The URL of one named hook."""
        return f"{self.base}/hook/{name}"

    def got(self, name: str, status: int | None = 200) -> list[Received]:
        """What `name` received (answered with `status`, or everything if None)."""
        return [r for r in self.received.get(name, []) if status is None or r.status == status]

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        planned = self.plan.get(name)
        status = planned.pop(0) if planned else self.default.get(name, 200)
        body = await request.text()
        self.received.setdefault(name, []).append(Received(dict(request.headers), body, status))
        return web.Response(status=status, text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A fresh loopback receiver per test."""
    port = free_port()
    rec = Receiver(base=f"http://127.0.0.1:{port}")
    app = web.Application()
    app.router.add_post("/hook/{name}", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield rec
    await runner.cleanup()


async def subscribe(
    api: httpx.AsyncClient, key: dict[str, str], url: str, event_types: list[str]
) -> dict[str, Any]:
    """Create a webhook; returns its body (with the one-time secret)."""
    response = await api.post(
        "/v1/webhooks", json={"url": url, "event_types": event_types}, headers=key
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["secret"].startswith("whsec_")
    return body


async def upsert_employee(
    api: httpx.AsyncClient, key: dict[str, str], external_id: str, title: str
) -> None:
    """One person.upserted event (a changed title makes it a change)."""
    response = await api.put(
        f"/v1/employees/{external_id}",
        json={"email": f"{external_id.lower()}@acme.com", "title": title},
        headers=key,
    )
    assert response.status_code in (200, 201), response.text


def verifies(secret: str, received: Received) -> bool:
    """Whether the delivery carries a valid signature by `secret`."""
    try:
        Verifier(secret).verify(received.body, received.headers)
    except WebhookVerificationError:
        return False
    return True


async def deliveries(
    api: httpx.AsyncClient, key: dict[str, str], webhook_id: str
) -> list[dict[str, Any]]:
    """The webhook's delivery log."""
    response = await api.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=key)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_delivers_only_subscribed_types_signed(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]], receiver: Receiver
) -> None:
    org_id, key = org
    upserts = await subscribe(api, key, receiver.url("upserts"), ["mentorbus.person.upserted.v1"])
    everything = await subscribe(
        api,
        key,
        receiver.url("all"),
        ["mentorbus.person.upserted.v1", "mentorbus.person.deactivated.v1"],
    )
    await upsert_employee(api, key, "E-1", "Engineer")
    assert (await api.delete("/v1/employees/E-1", headers=key)).status_code in (200, 204)

    await eventually(lambda: _async(len(receiver.got("all")) == 2))
    await eventually(lambda: _async(len(receiver.got("upserts")) == 1))
    first = receiver.got("upserts")[0]
    assert verifies(upserts["secret"], first)
    assert not verifies(everything["secret"], first)
    assert first.event["type"] == "mentorbus.person.upserted.v1"
    assert first.event["orgid"] == org_id
    assert first.headers["webhook-id"] == first.event["id"]
    assert {r.event["type"] for r in receiver.got("all")} == {
        "mentorbus.person.upserted.v1",
        "mentorbus.person.deactivated.v1",
    }
    # Deliveries are recorded with the event, so the log is complete: no deactivation here.
    log = await deliveries(api, key, upserts["id"])
    assert [(d["event_type"], d["status"], d["attempts"], d["last_status_code"]) for d in log] == [
        ("mentorbus.person.upserted.v1", "succeeded", 1, 200)
    ]


async def test_events_nobody_subscribed_to_are_skipped_without_a_trace(
    api: httpx.AsyncClient,
    admin: dict[str, str],
    org: tuple[str, dict[str, str]],
    receiver: Receiver,
    service_db: Callable[[str], Awaitable[asyncpg.Connection]],
) -> None:
    # One tenant subscribes to upserts; another tenant, and the other type, nobody.
    _, key = org
    _, other_key = await create_org(api, admin)
    await subscribe(api, key, receiver.url("subscribed"), ["mentorbus.person.upserted.v1"])
    await upsert_employee(api, other_key, "NOBODY-1", "Engineer")
    await upsert_employee(api, key, "E-1", "Engineer")
    assert (await api.delete("/v1/employees/E-1", headers=key)).status_code in (200, 204)
    await upsert_employee(api, key, "E-2", "Engineer")

    await eventually(lambda: _async(len(receiver.got("subscribed")) == 2))
    profiles, gateway = await service_db("profiles"), await service_db("gateway")
    try:
        sent = await profiles.fetch(
            "SELECT o.event_id, o.event_type, p.external_id, p.id FROM outbox_message AS o"
            " JOIN person AS p ON p.id::text = o.key WHERE p.external_id IN ($1, $2, $3)",
            "NOBODY-1", "E-1", "E-2",
        )  # fmt: skip
        events = {(r["external_id"], r["event_type"]): r["event_id"] for r in sent}
        person_ids = {r["external_id"]: str(r["id"]) for r in sent}
        # The gateway consumed them all in order: E-2's came after the skipped ones.
        handled = {
            r["event_id"]
            for r in await gateway.fetch(
                "SELECT event_id FROM inbox_message WHERE event_id = ANY($1)", list(events.values())
            )
        }
    finally:
        await profiles.close()
        await gateway.close()
    upserted, deactivated = "mentorbus.person.upserted.v1", "mentorbus.person.deactivated.v1"
    assert handled == {events["E-1", upserted], events["E-2", upserted]}
    assert events["E-1", deactivated] not in handled
    assert events["NOBODY-1", upserted] not in handled
    assert [r.event["subject"] for r in receiver.got("subscribed")] == [
        person_ids["E-1"],
        person_ids["E-2"],
    ]


async def _async(value: bool) -> bool:
    return value


async def test_retries_after_a_500_and_redelivers_on_demand(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]], receiver: Receiver
) -> None:
    _, key = org
    receiver.plan["flaky"] = [500]
    hook = await subscribe(api, key, receiver.url("flaky"), ["mentorbus.person.upserted.v1"])
    await upsert_employee(api, key, "E-2", "Analyst")

    await eventually(lambda: _async(len(receiver.got("flaky")) == 1))
    attempts = receiver.got("flaky", None)
    assert [a.status for a in attempts] == [500, 200]
    assert attempts[0].headers["webhook-id"] == attempts[1].headers["webhook-id"]
    assert all(verifies(hook["secret"], a) for a in attempts)

    async def logged() -> list[dict[str, Any]]:
        log = await deliveries(api, key, hook["id"])
        return log if log and log[0]["status"] == "succeeded" else []

    (delivery,) = await eventually(logged)
    assert delivery["attempts"] == 2
    assert delivery["last_status_code"] == 200
    assert delivery["next_attempt_at"] is None

    again = await api.post(
        f"/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/redeliver", headers=key
    )
    assert again.status_code == 202, again.text
    await eventually(lambda: _async(len(receiver.got("flaky")) == 2))
    assert receiver.got("flaky")[1].headers["webhook-id"] == delivery["event_id"]

    async def logged_three() -> bool:
        log = await deliveries(api, key, hook["id"])
        return log[0]["attempts"] == 3 and log[0]["status"] == "succeeded"

    await eventually(logged_three)
    missing = await api.post(
        f"/v1/webhooks/{hook['id']}/deliveries/{uuid.uuid4()}/redeliver", headers=key
    )
    assert missing.status_code == 404


async def test_an_aggregates_events_arrive_in_order(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]], receiver: Receiver
) -> None:
    _, key = org
    # The first event fails twice: the later ones of the same person must wait for it.
    receiver.plan["ordered"] = [500, 500]
    await subscribe(api, key, receiver.url("ordered"), ["mentorbus.person.upserted.v1"])
    for n in range(6):
        await upsert_employee(api, key, "E-3", f"Title {n}")

    await eventually(lambda: _async(len(receiver.got("ordered")) == 6))
    titles = [r.event["data"]["title"] for r in receiver.got("ordered")]
    assert titles == [f"Title {n}" for n in range(6)]
    versions = [r.event["data"]["version"] for r in receiver.got("ordered")]
    assert versions == sorted(versions)
    failed = receiver.got("ordered", 500)
    assert [f.event["data"]["title"] for f in failed] == ["Title 0", "Title 0"]


async def test_secret_rotation_signs_with_both_during_the_grace_period(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]], receiver: Receiver
) -> None:
    _, key = org
    hook = await subscribe(api, key, receiver.url("rotating"), ["mentorbus.person.upserted.v1"])
    rotated = await api.post(
        f"/v1/webhooks/{hook['id']}/rotate-secret",
        json={"grace_period_seconds": 3600},
        headers=key,
    )
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret != hook["secret"]
    assert rotated.json()["previous_secret_expires_at"] is not None
    await upsert_employee(api, key, "E-4", "Designer")
    await eventually(lambda: _async(len(receiver.got("rotating")) == 1))
    during = receiver.got("rotating")[0]
    assert verifies(new_secret, during)
    assert verifies(hook["secret"], during)

    # No grace: the previous secret stops signing at once.
    newest = await api.post(
        f"/v1/webhooks/{hook['id']}/rotate-secret",
        json={"grace_period_seconds": 0},
        headers=key,
    )
    newest_secret = newest.json()["secret"]
    await upsert_employee(api, key, "E-4", "Lead designer")
    await eventually(lambda: _async(len(receiver.got("rotating")) == 2))
    after = receiver.got("rotating")[1]
    assert verifies(newest_secret, after)
    assert not verifies(new_secret, after)
    assert not verifies(hook["secret"], after)
    listed = (await api.get(f"/v1/webhooks/{hook['id']}", headers=key)).json()
    assert "secret" not in listed


async def test_a_failing_endpoint_is_disabled_and_announced(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]], receiver: Receiver
) -> None:
    _, key = org
    receiver.default["down"] = 500
    down = await subscribe(api, key, receiver.url("down"), ["mentorbus.person.upserted.v1"])
    watcher = await subscribe(api, key, receiver.url("watcher"), ["mentorbus.webhook.disabled.v1"])
    await upsert_employee(api, key, "E-5", "Manager")

    async def disabled() -> dict[str, Any]:
        body: dict[str, Any] = (await api.get(f"/v1/webhooks/{down['id']}", headers=key)).json()
        return body if body["status"] == "disabled" else {}

    body = await eventually(disabled)
    assert body["consecutive_failures"] == 4
    assert "4 failed attempts" in body["disabled_reason"]
    assert len(receiver.got("down", 500)) == 4
    # The webhook.disabled event reaches the organization's other webhook.
    await eventually(lambda: _async(len(receiver.got("watcher")) == 1))
    announced = receiver.got("watcher")[0]
    assert verifies(watcher["secret"], announced)
    assert announced.event["type"] == "mentorbus.webhook.disabled.v1"
    assert announced.event["data"]["webhook_id"] == down["id"]

    (pending,) = await deliveries(api, key, down["id"])
    assert pending["status"] == "pending"
    assert pending["attempts"] == 4
    assert pending["next_attempt_at"] is None  # nothing is attempted while disabled
    # Enabled again (the endpoint is fixed): the pending delivery goes out.
    receiver.default["down"] = 200
    enabled = await api.patch(f"/v1/webhooks/{down['id']}", json={"status": "active"}, headers=key)
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["consecutive_failures"] == 0
    await eventually(lambda: _async(len(receiver.got("down")) == 1))


async def test_webhooks_are_confined_validated_and_scoped(
    api: httpx.AsyncClient,
    admin: dict[str, str],
    org: tuple[str, dict[str, str]],
    receiver: Receiver,
) -> None:
    _, key = org
    hook = await subscribe(api, key, receiver.url("mine"), ["mentorbus.match.created.v1"])
    _, other = await create_org(api, admin)
    for method, path in [
        ("GET", f"/v1/webhooks/{hook['id']}"),
        ("PATCH", f"/v1/webhooks/{hook['id']}"),
        ("DELETE", f"/v1/webhooks/{hook['id']}"),
        ("GET", f"/v1/webhooks/{hook['id']}/deliveries"),
        ("POST", f"/v1/webhooks/{hook['id']}/rotate-secret"),
    ]:
        response = await api.request(
            method, path, headers=other, json={} if method in {"PATCH", "POST"} else None
        )
        assert response.status_code == 404, (method, path, response.text)
    assert (await api.get("/v1/webhooks", headers=other)).json()["items"] == []
    listed = (await api.get("/v1/webhooks", headers=key)).json()["items"]
    assert [w["id"] for w in listed] == [hook["id"]]

    bad = await api.post(
        "/v1/webhooks",
        json={"url": receiver.url("x"), "event_types": ["mentorbus.nothing.v1"]},
        headers=key,
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "event_types.0"
    for url in ["ftp://example.com/hook", "http://169.254.169.254/latest/meta-data", "nope"]:
        refused = await api.post(
            "/v1/webhooks",
            json={"url": url, "event_types": ["mentorbus.match.created.v1"]},
            headers=key,
        )
        assert refused.status_code == 422, (url, refused.text)
        assert refused.json()["errors"][0]["field"] == "url"

    _, reader = await create_org(api, admin, scopes=["webhooks:read"])
    assert (await api.get("/v1/webhooks", headers=reader)).status_code == 200
    write = await api.post(
        "/v1/webhooks",
        json={"url": receiver.url("x"), "event_types": ["mentorbus.match.created.v1"]},
        headers=reader,
    )
    assert write.status_code == 403
    _, stranger = await create_org(api, admin, scopes=["employees"])
    assert (await api.get("/v1/webhooks", headers=stranger)).status_code == 403

    assert (await api.delete(f"/v1/webhooks/{hook['id']}", headers=key)).status_code == 204
    assert (await api.get(f"/v1/webhooks/{hook['id']}", headers=key)).status_code == 404


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://10.1.2.3/hook", "private"),
        ("https://192.168.0.10/hook", "private"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),
        ("https://[::ffff:10.0.0.1]/hook", "private"),
        ("https://169.254.10.20/hook", "link-local"),
        ("https://[fe80::1]/hook", "link-local"),
        ("https://169.254.169.254/hook", "metadata"),
        ("https://localhost/hook", "loopback"),
        ("https://0.0.0.0/hook", "not a unicast"),
    ],
)
async def test_private_targets_are_refused_at_registration(url: str, reason: str) -> None:
    refusal = await check_url(url, allow_private=False, allow_http=False)
    assert refusal is not None
    assert reason in refusal


async def test_public_targets_pass_and_http_needs_the_setting() -> None:
    assert (
        await check_url("https://93.184.215.14/hook", allow_private=False, allow_http=False) is None
    )
    assert await check_url("http://93.184.215.14/", allow_private=False, allow_http=False)
    # Metadata stays refused even where private targets are allowed.
    assert (
        await check_url("http://169.254.169.254/", allow_private=True, allow_http=True) is not None
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
async def test_the_connect_time_guard_refuses_loopback(receiver: Receiver, host: str) -> None:
    # A target that passed registration but resolves to loopback when posting (DNS
    # rebinding): the guarded connector checks the address it actually connects to.
    settings = WebhookSettings(allow_private_targets=False, allow_http=True)
    port = receiver.base.rsplit(":", 1)[1]
    item = Claimed(
        delivery_id=uuid.uuid4(),
        webhook_id=uuid.uuid4(),
        event_id=uuid.uuid4(),
        url=f"http://{host}:{port}/hook/guarded",
        payload="{}",
        secrets=["whsec_" + "A" * 32],
    )
    http = open_http_session(settings)
    try:
        outcome = await post_signed(http, item, settings.max_response_bytes)
    finally:
        await http.close()
    assert not outcome.succeeded
    assert outcome.error is not None and "refused target" in outcome.error
    assert receiver.got("guarded", None) == []
    # The same guard with private targets allowed reaches the receiver.
    allowed = WebhookSettings(allow_private_targets=True, allow_http=True)
    http = open_http_session(allowed)
    try:
        outcome = await post_signed(http, item, allowed.max_response_bytes)
    finally:
        await http.close()
    assert outcome.status_code == 200
    assert len(receiver.got("guarded")) == 1


async def test_asyncapi_document_is_valid_and_complete(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    response = await api.get("/asyncapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["asyncapi"].startswith("3.")
    names = {m["name"] for m in document["components"]["messages"].values()}
    assert {m.event_type for m in event_models()} <= names
    addresses = {c["address"] for c in document["channels"].values()}
    assert {"mentorbus.people", "mentorbus.matches", "mentorbus.webhooks"} <= addresses
    path = tmp_path / "asyncapi.json"
    path.write_text(response.text)
    result = await asyncio.to_thread(
        subprocess.run,
        ["node", str(NODE_TOOLS / "validate-asyncapi.mjs"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=NODE_TOOLS,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout
    assert " error " not in result.stdout


async def test_redirects_are_not_followed(receiver: Receiver) -> None:
    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(receiver.url("target"))

    port = free_port()
    app = web.Application()
    app.router.add_post("/moved", redirect)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    settings = WebhookSettings(allow_private_targets=True, allow_http=True)
    item = Claimed(
        delivery_id=uuid.uuid4(),
        webhook_id=uuid.uuid4(),
        event_id=uuid.uuid4(),
        url=f"http://127.0.0.1:{port}/moved",
        payload="{}",
        secrets=["whsec_" + "A" * 32],
    )
    http = open_http_session(settings)
    try:
        outcome = await post_signed(http, item, settings.max_response_bytes)
    finally:
        await http.close()
        await runner.cleanup()
    assert outcome.status_code == 302
    assert not outcome.succeeded  # a redirect is a failed attempt, retried later
    assert receiver.got("target", None) == []


def test_production_needs_a_real_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTORBUS_ENVIRONMENT", "production")
    with pytest.raises(ValueError, match="MENTORBUS_WEBHOOK_SECRET_KEY"):
        WebhookSettings()
    monkeypatch.setenv(
        "MENTORBUS_WEBHOOK_SECRET_KEY", "dGhpcy1pcy1hLXJlYWwta2V5LWZvci10ZXN0aW5nISE="
    )
    assert WebhookSettings().environment == "production"
