"""Helpers for tests: waiting for eventual consistency, tenants, in-process settings."""

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from devstack.stack import FAST_GROUP_ENV, Stack
from shared.identity import IDENTITY_HEADERS, sign_identity
from shared.kafka import make_consumer
from shared.settings import ServiceSettings

T = TypeVar("T")

# A broker for the suite other than the embedded one (e.g. Apache Kafka); its group
# timeouts then stay within Apache Kafka's default bounds.
EXTERNAL_BROKER = os.environ.get("MENTORBUS_TEST_KAFKA_BOOTSTRAP_SERVERS", "")


async def eventually(
    probe: Callable[[], Awaitable[T]], timeout: float = 20.0, interval: float = 0.1
) -> T:
    """Poll `probe` until it returns something truthy (then return it) or time runs out."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(interval)


def kafka_settings(bootstrap_servers: str, **overrides: Any) -> ServiceSettings:
    """Settings for in-process shared components against a test broker."""
    fast_join = {} if bootstrap_servers == EXTERNAL_BROKER else FAST_GROUP_ENV
    values: dict[str, Any] = {
        key.removeprefix("MENTORBUS_").lower(): int(value) for key, value in fast_join.items()
    }
    values.update(kafka_request_timeout_ms=4000, kafka_delivery_timeout_ms=5000)
    values.update(overrides)
    return ServiceSettings(service_name="test", kafka_bootstrap_servers=bootstrap_servers, **values)


async def create_org(
    api: httpx.AsyncClient, admin: dict[str, str], scopes: list[str] | None = None
) -> tuple[str, dict[str, str]]:
    """A new organization and the headers of a fresh API key for it."""
    name = f"Org {uuid.uuid4().hex[:6]}"
    org = await api.post("/v1/organizations", json={"name": name}, headers=admin)
    assert org.status_code == 201, org.text
    body: dict[str, Any] = {"name": "test key"}
    if scopes is not None:
        body["scopes"] = scopes
    org_id = org.json()["id"]
    key = await api.post(f"/v1/organizations/{org_id}/api-keys", json=body, headers=admin)
    assert key.status_code == 201, key.text
    return org_id, {"Authorization": f"Bearer {key.json()['key']}"}


async def read_topic(
    settings: ServiceSettings,
    topic: str,
    done: Callable[[list[Any]], bool],
    timeout: float = 20.0,
) -> list[Any]:
    """Read a topic from the beginning (fresh group) until `done(records)` or timeout."""
    consumer = await asyncio.to_thread(
        make_consumer, settings, f"test-reader-{uuid.uuid4().hex[:8]}", [topic]
    )
    records: list[Any] = []
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        while not done(records):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"read {len(records)} records from {topic}, not enough")
            batch = await asyncio.to_thread(consumer.poll, 500)
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await asyncio.to_thread(consumer.close)
    return records


class TokenIssuer:
    """A stand-in for an organization's identity provider: signs end-user JWTs (ES256)
    that the test stack's gateway accepts (`env()` configures it)."""

    issuer = "https://idp.mentorbus.test"
    audience = "mentorbus-api"

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.public_pem = (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def env(self) -> dict[str, str]:
        """The gateway settings that trust this issuer."""
        return {
            "MENTORBUS_JWT_PUBLIC_KEY": self.public_pem,
            "MENTORBUS_JWT_ISSUER": self.issuer,
            "MENTORBUS_JWT_AUDIENCE": self.audience,
        }

    def token(self, org_id: str, subject: str, role: str = "member", **claims: Any) -> str:
        """A signed token for an employee of an organization (claims override defaults)."""
        now = int(time.time())
        payload = {
            "iss": self.issuer, "aud": self.audience, "sub": subject, "org_id": org_id,
            "role": role, "iat": now, "exp": now + 600, **claims,
        }  # fmt: skip
        return jwt.encode(payload, self.private_key, algorithm="ES256")

    def headers(self, org_id: str, subject: str, role: str = "member") -> dict[str, str]:
        """Authorization headers of an end user."""
        return {"Authorization": f"Bearer {self.token(org_id, subject, role)}"}


# The test stack's gateway trusts this identity provider (tests/conftest.py).
IDENTITY_PROVIDER = TokenIssuer()


def member(org_id: str, external_id: str) -> dict[str, str]:
    """Headers of an end user with role `member` (a JWT the test gateway trusts)."""
    return IDENTITY_PROVIDER.headers(org_id, external_id)


def direct_client(stack: Stack, service: str, **kwargs: Any) -> httpx.AsyncClient:
    """A client straight to a service (not through the gateway) that signs the identity
    headers of each request (`x-mentorbus-*`, e.g. `Caller(...).headers()`) as the gateway
    does, so a test can act as a member or key the gateway would pass. Requests without
    identity headers go out unsigned, as anonymous ones."""

    async def sign(request: httpx.Request) -> None:
        identity = {k: v for k, v in request.headers.items() if k.lower() in IDENTITY_HEADERS}
        if identity:
            signed = sign_identity(
                identity,
                method=request.method,
                target=request.url.raw_path,
                secret=stack.identity_secret,
                ttl_seconds=30,
            )
            request.headers.update(signed)

    kwargs.setdefault("timeout", 15)
    return httpx.AsyncClient(base_url=stack.url(service), event_hooks={"request": [sign]}, **kwargs)
