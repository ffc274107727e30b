"""Gateway rules: which service owns a path, what scope it needs, and API keys.
No HTTP client and no Kafka here."""

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.models import ApiKey
from shared.db import utcnow
from shared.errors import FieldError, Forbidden, InvalidInput, NotFound
from shared.identity import ALL_SCOPES
from shared.identity import scope_allows as _scope_allows

KEY_PREFIX = "mbk"


@dataclass(frozen=True)
class Route:
    """The service that owns a path, and the scope family guarding it. A `public` route
    needs no credentials (a secret calendar-feed link, which calendar apps fetch bare)."""

    service: str
    scope: str
    public: bool = False
    # The table's pattern: the route label of the gateway's metrics.
    pattern: str = ""


_ID = r"[^/]+"  # one path segment: never a slash

# Every public path, segment by segment (no open-ended suffixes, so a path cannot borrow
# a sibling's scope). First match wins.
_TABLE: list[tuple[str, str, str, bool]] = [
    # profiles
    (r"^/v1/organizations$", "profiles", "organizations", False),
    (r"^/v1/organizations/{id}$", "profiles", "organizations", False),
    (r"^/v1/employees$", "profiles", "employees", False),
    (r"^/v1/employees/bulk$", "profiles", "employees", False),
    (r"^/v1/employees/{id}$", "profiles", "employees", False),
    (r"^/scim/v2(/{id}){0,2}/?$", "profiles", "scim", False),
    (r"^/v1/programs$", "profiles", "programs", False),
    (r"^/v1/programs/{id}$", "profiles", "programs", False),
    (r"^/v1/programs/{id}/enrollments$", "profiles", "programs", False),
    (r"^/v1/programs/{id}/enrollments/{id}$", "profiles", "programs", False),
    # matching
    (r"^/v1/programs/{id}/enrollments/{id}/suggestions$", "matching", "matching", False),
    (r"^/v1/programs/{id}/matching-runs$", "matching", "matching", False),
    (r"^/v1/programs/{id}/mentors$", "matching", "matching", False),
    (r"^/v1/matching-runs/{id}$", "matching", "matching", False),
    (r"^/v1/matching-runs/{id}/apply$", "matching", "matching", False),
    (r"^/v1/matches$", "matching", "matching", False),
    (r"^/v1/matches/{id}$", "matching", "matching", False),
    (r"^/v1/matches/{id}/(accept|decline|end|complete)$", "matching", "matching", False),
    (r"^/v1/groups/{id}$", "matching", "matching", False),
    # sessions
    (
        r"^/v1/employees/{id}/(availability|calendar\.ics|calendar-feed)$",
        "sessions",
        "sessions",
        False,
    ),
    (r"^/v1/calendar-feeds/{id}$", "sessions", "sessions", True),
    (r"^/v1/matches/{id}/slots$", "sessions", "sessions", False),
    (r"^/v1/groups/{id}/slots$", "sessions", "sessions", False),
    (r"^/v1/sessions$", "sessions", "sessions", False),
    (r"^/v1/sessions/{id}$", "sessions", "sessions", False),
    (r"^/v1/sessions/{id}/(cancel|complete|no-show)$", "sessions", "sessions", False),
    # feedback
    (
        r"^/v1/programs/{id}/(analytics|at-risk|tracks|outcomes|agreement-template)$",
        "feedback",
        "feedback",
        False,
    ),
    (r"^/v1/matches/{id}/(check-ins|track|agreement)$", "feedback", "feedback", False),
    (r"^/v1/matches/{id}/track/steps/{id}/complete$", "feedback", "feedback", False),
    (r"^/v1/matches/{id}/agreement/sign$", "feedback", "feedback", False),
    (r"^/v1/feedback-requests$", "feedback", "feedback", False),
    (r"^/v1/feedback-requests/{id}$", "feedback", "feedback", False),
    (r"^/v1/feedback$", "feedback", "feedback", False),
    (r"^/v1/feedback/{id}$", "feedback", "feedback", False),
    (r"^/v1/goals$", "feedback", "feedback", False),
    (r"^/v1/goals/{id}$", "feedback", "feedback", False),
    (r"^/v1/tracks/{id}$", "feedback", "feedback", False),
    (r"^/v1/tracks/{id}/copy$", "feedback", "feedback", False),
]
_ROUTES = [
    (re.compile(pattern.replace("{id}", _ID)), Route(service, scope, public, pattern))
    for pattern, service, scope, public in _TABLE
]

# `keys` manages the organization's API keys (list, revoke).
SCOPE_FAMILIES = (
    "employees", "scim", "programs", "matching", "sessions", "feedback", "keys", "webhooks",
)  # fmt: skip
KNOWN_SCOPES = frozenset(
    [ALL_SCOPES, *SCOPE_FAMILIES]
    + [f"{family}:{access}" for family in SCOPE_FAMILIES for access in ("read", "write")]
)


def resolve_route(path: str) -> Route | None:
    """The owner of a public path, or None if no service serves it."""
    for pattern, route in _ROUTES:
        if pattern.fullmatch(path):
            return route
    return None


def required_scope(route: Route, method: str) -> str:
    """`<family>:read` for safe methods, `<family>:write` for the rest."""
    access = "read" if method in {"GET", "HEAD", "OPTIONS"} else "write"
    return f"{route.scope}:{access}"


def scope_allows(granted: list[str], required: str) -> bool:
    """`*` grants every scope, a bare family its read and write; no scopes grant nothing."""
    return _scope_allows(granted, required)


def grants_at_least(granted: list[str], other: list[str]) -> bool:
    """Whether `granted` covers every scope of `other` (so `other` is not wider)."""
    for scope in other:
        if scope == ALL_SCOPES:
            if ALL_SCOPES not in granted:
                return False
        elif ":" in scope:
            if not scope_allows(granted, scope):
                return False
        elif not all(scope_allows(granted, f"{scope}:{a}") for a in ("read", "write")):
            return False
    return True


def hash_secret(secret: str) -> bytes:
    """SHA-256 suffices: secrets are 256 random bits, not guessable passwords."""
    return hashlib.sha256(secret.encode()).digest()


def parse_key(token: str) -> tuple[uuid.UUID, str] | None:
    """Split `mbk_<id>_<secret>`; None if the token is not shaped like one of ours."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    try:
        return uuid.UUID(hex=parts[1]), parts[2]
    except ValueError:
        return None


def is_admin_token(token: str, admin_token: str) -> bool:
    """Constant-time comparison with the configured admin token (never matches if unset)."""
    return bool(admin_token) and hmac.compare_digest(token.encode(), admin_token.encode())


async def issue_api_key(
    session: AsyncSession, org_id: uuid.UUID, name: str, scopes: list[str]
) -> tuple[ApiKey, str]:
    """Create a key; returns it with the full secret key, which is never shown again."""
    if not scopes:
        raise InvalidInput([FieldError("scopes", 'name at least one scope, or "*" for all')])
    unknown = sorted(set(scopes) - KNOWN_SCOPES)
    if unknown:
        raise InvalidInput([FieldError("scopes", f"unknown scopes: {', '.join(unknown)}")])
    key_id = uuid.uuid4()
    secret = secrets.token_urlsafe(32)
    api_key = ApiKey(
        id=key_id, org_id=org_id, name=name, scopes=sorted(set(scopes)),
        secret_hash=hash_secret(secret),
    )  # fmt: skip
    session.add(api_key)
    await session.flush()
    return api_key, f"{KEY_PREFIX}_{key_id.hex}_{secret}"


async def find_active_key(session: AsyncSession, token: str) -> ApiKey | None:
    """The unrevoked key a bearer token belongs to, if its secret matches."""
    parsed = parse_key(token)
    if parsed is None:
        return None
    key_id, secret = parsed
    api_key = await session.get(ApiKey, key_id)
    if api_key is None or api_key.revoked_at is not None:
        return None
    if not hmac.compare_digest(api_key.secret_hash, hash_secret(secret)):
        return None
    return api_key


async def list_api_keys(
    session: AsyncSession, org_id: uuid.UUID, *, after: uuid.UUID | None, limit: int
) -> list[ApiKey]:
    """An organization's keys (revoked ones included), oldest first."""
    query = select(ApiKey).where(ApiKey.org_id == org_id).order_by(ApiKey.id).limit(limit)
    if after is not None:
        query = query.where(ApiKey.id > after)
    return list((await session.scalars(query)).all())


async def revoke_api_key(
    session: AsyncSession, org_id: uuid.UUID, key_id: uuid.UUID, revoker_scopes: list[str]
) -> ApiKey:
    """Revoke a key of the organization (idempotent); never one with wider scopes than
    the revoker's own."""
    api_key = await session.get(ApiKey, key_id)
    if api_key is None or api_key.org_id != org_id:
        raise NotFound(f"API key {key_id} not found")
    if not grants_at_least(revoker_scopes, list(api_key.scopes)):
        raise Forbidden("a key cannot revoke a key with wider scopes than its own")
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
    return api_key
