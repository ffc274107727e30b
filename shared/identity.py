"""Who is calling: the gateway authenticates and passes the caller to services in these
headers (it strips any a client sends), signed: `x-mentorbus-identity-signature` is an
HMAC-SHA256, under the secret `MENTORBUS_IDENTITY_SECRET` that the gateway and every service
share, of the identity, its expiry (`x-mentorbus-identity-expires`, a few seconds ahead) and
the exact method, path and query the gateway authorized. Services verify it
(`IdentityMiddleware`) and refuse identity headers that are unsigned, forged, expired or
for another request with 401, so reaching a service directly does not make anyone a caller.

Three kinds of caller reach a service:
- the platform admin (`is_admin`, no organization);
- an organization's API key, or an end user whose token says `role: admin`: the whole
  organization (`role == "admin"`), limited by `scopes`;
- an end user with `role: member` (`subject` is their employee `external_id`): only what is
  theirs (their enrollments, matches they are in and everything hanging off those, their own
  feedback requests, availability and calendar). Services enforce this with `is_member` and
  `subject`: another person's resource is a 404 (an id) or 403 (an admin-only list).
"""

import base64
import functools
import hashlib
import hmac
import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.errors import Forbidden, Unauthorized, problem

ORG_HEADER = "x-mentorbus-org-id"
SCOPES_HEADER = "x-mentorbus-scopes"
ADMIN_HEADER = "x-mentorbus-admin"
SUBJECT_HEADER = "x-mentorbus-subject"
ROLE_HEADER = "x-mentorbus-role"
EXPIRES_HEADER = "x-mentorbus-identity-expires"
SIGNATURE_HEADER = "x-mentorbus-identity-signature"
# What the signature covers, in this order (absent headers count as empty).
_SIGNED = (ORG_HEADER, SCOPES_HEADER, ADMIN_HEADER, SUBJECT_HEADER, ROLE_HEADER)
# Every header of the identity: the gateway drops any a client sends.
IDENTITY_HEADERS = (*_SIGNED, EXPIRES_HEADER, SIGNATURE_HEADER)
_IDENTITY_BYTES = frozenset(h.encode() for h in IDENTITY_HEADERS)

# A key granted `*` may do everything; otherwise a scope is `<family>` (read and write) or
# `<family>:read` / `<family>:write`. No scopes grant nothing.
ALL_SCOPES = "*"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Role = Literal["admin", "member"]


@dataclass(frozen=True)
class Caller:
    """The authenticated caller: a platform admin, an organization's API key, or an end
    user (JWT) of an organization acting as `role`."""

    org_id: uuid.UUID | None
    is_admin: bool
    scopes: tuple[str, ...] = ()
    # The end user's employee external_id (JWT `sub`); None for API keys.
    subject: str | None = None
    role: Role = "admin"

    @property
    def is_member(self) -> bool:
        """An end user who sees only what is theirs."""
        return self.role == "member"

    def headers(self) -> dict[str, str]:
        """The identity headers the gateway sends to a service for this caller."""
        headers = {SCOPES_HEADER: ",".join(self.scopes), ROLE_HEADER: self.role}
        if self.org_id is not None:
            headers[ORG_HEADER] = str(self.org_id)
        if self.is_admin:
            headers[ADMIN_HEADER] = "true"
        if self.subject is not None:
            headers[SUBJECT_HEADER] = self.subject
        return headers


def scope_allows(granted: Collection[str], required: str) -> bool:
    """Whether scopes `granted` include `required` (`<family>:read|write`): `*` grants
    everything, a bare family grants its read and write."""
    if ALL_SCOPES in granted or required in granted:
        return True
    return required.split(":", 1)[0] in granted


def _parse(headers: Mapping[str, str]) -> Caller:
    raw_org = headers.get(ORG_HEADER)
    try:
        org_id = uuid.UUID(raw_org) if raw_org else None
    except ValueError:
        raise Unauthorized("malformed organization identity") from None
    scopes = tuple(s for s in headers.get(SCOPES_HEADER, "").split(",") if s)
    role: Role = "member" if headers.get(ROLE_HEADER) == "member" else "admin"
    subject = headers.get(SUBJECT_HEADER) or None
    if role == "member" and subject is None:
        raise Unauthorized("a member identity names no subject")
    return Caller(
        org_id=org_id,
        is_admin=headers.get(ADMIN_HEADER) == "true",
        scopes=scopes,
        subject=subject,
        role=role,
    )


def _signature(
    secret: bytes, identity: Mapping[str, str], expires: str, method: str, target: bytes
) -> str:
    # Header values never hold a newline, so the fields cannot run into each other.
    fields = "\n".join([expires, method, *(identity.get(h, "") for h in _SIGNED)])
    mac = _keyed(secret).copy()  # the key's setup done once, not per request
    mac.update(fields.encode() + b"\n" + target)
    return base64.urlsafe_b64encode(mac.digest()).decode()


@functools.lru_cache(maxsize=8)
def _keyed(secret: bytes) -> "hmac.HMAC":
    return hmac.new(secret, digestmod=hashlib.sha256)


def request_target(raw_path: bytes, query_string: bytes) -> bytes:
    """The path and query exactly as sent on the wire (what a signature covers)."""
    return raw_path + b"?" + query_string if query_string else raw_path


def sign_identity(
    identity: Mapping[str, str],
    *,
    method: str,
    target: bytes,
    secret: str,
    ttl_seconds: int,
) -> dict[str, str]:
    """The identity headers plus their expiry and signature, for one request (`method`
    and `target`, the raw path and query) that the gateway sends to a service."""
    expires = str(int(time.time()) + ttl_seconds)
    signature = _signature(secret.encode(), identity, expires, method, target)
    return {**identity, EXPIRES_HEADER: expires, SIGNATURE_HEADER: signature}


CALLER_SCOPE_KEY = "mentorbus.caller"
_ANONYMOUS = Caller(org_id=None, is_admin=False)


class IdentityMiddleware:
    """Verifies the gateway's signed identity on every request to a service (pure ASGI:
    one HMAC per request). A request without identity headers goes on anonymous (health
    checks, metrics); one whose identity is unsigned, forged, expired or was signed for
    another request is refused with 401 before any route runs."""

    def __init__(self, app: ASGIApp, secret: str) -> None:
        self.app = app
        self.secret = secret.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found: dict[str, str] = {}
            duplicated = False
            for name, value in scope["headers"]:
                if name in _IDENTITY_BYTES:
                    key = name.decode()
                    duplicated = duplicated or key in found
                    found[key] = value.decode("latin-1")
            if found:
                refusal = "duplicated identity headers" if duplicated else self._check(scope, found)
                if refusal is None:
                    try:
                        scope[CALLER_SCOPE_KEY] = _parse(found)
                    except Unauthorized as exc:
                        refusal = exc.detail
                if refusal is not None:
                    await problem(401, "Unauthorized", refusal)(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope, found: dict[str, str]) -> str | None:
        signature = found.get(SIGNATURE_HEADER)
        expires = found.get(EXPIRES_HEADER, "")
        if signature is None:
            return "unsigned identity headers: only the gateway may name a caller"
        raw_path = scope.get("raw_path") or scope["path"].encode()
        target = request_target(raw_path, scope.get("query_string", b""))
        expected = _signature(self.secret, found, expires, scope["method"], target)
        if not hmac.compare_digest(expected, signature):
            return "the identity signature does not match this request"
        if not expires.isdigit() or int(expires) < time.time():
            return "the identity has expired"
        return None


def caller_from_request(request: Request) -> Caller:
    """The identity the gateway attached (verified by `IdentityMiddleware`); anonymous if
    there is none."""
    caller: Caller = request.scope.get(CALLER_SCOPE_KEY, _ANONYMOUS)
    return caller


def _lacking_scope(caller: Caller, family: str, method: str) -> str | None:
    """The scope an API key lacks for this request, if any. Scopes limit API keys; an end
    user (`subject` set) is limited by role instead, and a caller without an organization
    reaches no tenant data anyway (those routes refuse it with 401/403)."""
    if caller.org_id is None or caller.subject is not None:
        return None
    needed = f"{family}:{'read' if method in SAFE_METHODS else 'write'}"
    return None if scope_allows(caller.scopes, needed) else needed


def require_scope(family: str) -> Any:
    """A router dependency: an organization's API key needs `<family>:read` for safe
    methods and `<family>:write` for the rest (the gateway checks the same; a service checks
    again so that no path confusion at the edge borrows another family's scope)."""

    # async: FastAPI runs a plain `def` dependency in a worker thread (see below).
    async def check(request: Request) -> None:
        lacking = _lacking_scope(caller_from_request(request), family, request.method)
        if lacking is not None:
            raise Forbidden(f"this API key lacks the scope {lacking}")

    return Depends(check)


class ScopeGuard:
    """`require_scope` for a mounted ASGI app that has no FastAPI dependencies (SCIM)."""

    def __init__(self, app: ASGIApp, family: str) -> None:
        self.app = app
        self.family = family

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            caller: Caller = scope.get(CALLER_SCOPE_KEY, _ANONYMOUS)
            lacking = _lacking_scope(caller, self.family, scope["method"])
            if lacking is not None:
                detail = f"this API key lacks the scope {lacking}"
                await problem(403, "Forbidden", detail)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def require_org(request: Request) -> uuid.UUID:
    """The caller's organization; every tenant-scoped route depends on it."""
    caller = caller_from_request(request)
    if caller.org_id is None:
        raise Unauthorized("an organization API key is required")
    return caller.org_id


def require_org_caller(request: Request) -> Caller:
    """The caller of a tenant-scoped route (organization set), to check member rules."""
    caller = caller_from_request(request)
    if caller.org_id is None:
        raise Unauthorized("an organization API key is required")
    return caller


def require_org_admin(request: Request) -> uuid.UUID:
    """The organization of a caller with organization-wide access (not a member): for
    admin-only lists and writes such as `GET /v1/employees`."""
    caller = require_org_caller(request)
    if caller.is_member:
        raise Forbidden("this operation needs organization-wide access")
    assert caller.org_id is not None
    return caller.org_id


def require_admin(request: Request) -> Caller:
    """Only the platform admin passes."""
    caller = caller_from_request(request)
    if not caller.is_admin:
        raise Forbidden("this operation needs the platform admin token")
    return caller


# FastAPI runs a plain `def` dependency in a worker thread: a thread hop per request for
# reading a header. These async twins run on the event loop.
async def _org(request: Request) -> uuid.UUID:
    return require_org(request)


async def _org_caller(request: Request) -> Caller:
    return require_org_caller(request)


async def _org_admin(request: Request) -> uuid.UUID:
    return require_org_admin(request)


async def _admin(request: Request) -> Caller:
    return require_admin(request)


OrgId = Annotated[uuid.UUID, Depends(_org)]
OrgCaller = Annotated[Caller, Depends(_org_caller)]
OrgAdminId = Annotated[uuid.UUID, Depends(_org_admin)]
AdminCaller = Annotated[Caller, Depends(_admin)]
