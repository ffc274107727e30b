"""Gateway authentication: `Authorization: Bearer <token>` -> the caller.

Three kinds of token:
- the platform admin token (settings);
- an organization's API key (`mbk_<id>_<secret>`), verified against its stored hash and
  then cached for `api_key_cache_seconds`, so a plain read costs no database round trip;
- an end user's JWT from the organization's identity provider (RS256/ES256, PEM key or
  JWKS, issuer and audience checked), with claims `sub` (employee external_id), `org_id`
  and `role` (`admin` | `member`).
"""

import asyncio
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request

from services.gateway import domain
from services.gateway.settings import GatewaySettings
from shared.errors import Unauthorized
from shared.identity import Caller

ROLES = ("admin", "member")


@dataclass(frozen=True)
class _Cached:
    caller: Caller
    key_id: uuid.UUID
    expires_at: float


class ApiKeyCache:
    """Verified API keys by the SHA-256 of the token, each trusted until its expiry.

    Bounded: when full, expired entries go first, then the oldest. A key revoked through
    this replica is dropped at once (`forget`); through another replica it stops working
    here when its entry expires. Concurrent misses of one token share one lookup (`load`),
    so an entry expiring under load costs one database round trip, not one per request."""

    def __init__(self, ttl_seconds: float, max_entries: int) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[bytes, _Cached] = {}
        self._loading: dict[bytes, asyncio.Future[Caller | None]] = {}

    async def load(
        self, digest: bytes, lookup: Callable[[], Awaitable[tuple[Caller, uuid.UUID] | None]]
    ) -> Caller | None:
        """The cached caller of a token, else the one `lookup` finds (None: no valid key);
        a lookup already under way for the same token is waited for, not repeated."""
        cached = self.get(digest)
        if cached is not None:
            return cached
        while (pending := self._loading.get(digest)) is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this request was cancelled
                # The request that looked the key up was cancelled: look again.
        future: asyncio.Future[Caller | None] = asyncio.get_running_loop().create_future()
        self._loading[digest] = future
        try:
            found = await lookup()
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        except BaseException:
            future.cancel()
            raise
        finally:
            del self._loading[digest]
        caller = None
        if found is not None:
            caller, key_id = found
            self.put(digest, caller, key_id)
        future.set_result(caller)
        return caller

    def get(self, digest: bytes) -> Caller | None:
        """The cached caller of a token, if still fresh."""
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry.expires_at <= time.monotonic():
            del self._entries[digest]
            return None
        return entry.caller

    def put(self, digest: bytes, caller: Caller, key_id: uuid.UUID) -> None:
        """Remember a verified key."""
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            now = time.monotonic()
            for stale in [d for d, e in self._entries.items() if e.expires_at <= now]:
                del self._entries[stale]
            while len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]  # oldest inserted
        self._entries[digest] = _Cached(caller, key_id, time.monotonic() + self.ttl)

    def forget(self, key_id: uuid.UUID) -> None:
        """Drop a revoked key."""
        for digest in [d for d, e in self._entries.items() if e.key_id == key_id]:
            del self._entries[digest]


class TokenVerifier:
    """Checks end-user JWTs against the configured key (PEM) or key set (JWKS)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings
        self._jwks = (
            jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True, lifespan=300, timeout=5)
            if settings.jwt_jwks_url
            else None
        )

    async def verify(self, token: str) -> Caller:
        """The caller a valid token names; Unauthorized otherwise."""
        s = self._settings
        try:
            key: Any = s.jwt_public_key
            if self._jwks is not None:
                # The key set is cached; a fetch (urllib, blocking) runs off the event loop.
                key = (await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)).key
            claims = jwt.decode(
                token,
                key,
                algorithms=s.jwt_algorithms,
                audience=s.jwt_audience,
                issuer=s.jwt_issuer,
                leeway=s.jwt_leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except (jwt.PyJWTError, ValueError) as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        subject, role, org = claims.get("sub"), claims.get("role"), claims.get("org_id")
        if not isinstance(subject, str) or not subject:
            raise Unauthorized("invalid token: `sub` must name the employee")
        if role not in ROLES:
            raise Unauthorized("invalid token: `role` must be admin or member")
        try:
            org_id = uuid.UUID(str(org))
        except ValueError:
            raise Unauthorized("invalid token: `org_id` must be an organization id") from None
        return Caller(org_id=org_id, is_admin=False, subject=subject, role=role)


def _looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


async def authenticate(request: Request) -> Caller:
    """`Authorization: Bearer <admin token | API key | end-user JWT>` -> the caller.

    A cached API key needs no database session at all; a miss opens one just for the
    lookup."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("send Authorization: Bearer <API key or token>")
    state = request.app.state
    settings: GatewaySettings = state.settings
    if domain.is_admin_token(token, settings.admin_token):
        return Caller(org_id=None, is_admin=True)
    if token.startswith(f"{domain.KEY_PREFIX}_"):
        cache: ApiKeyCache = state.api_key_cache

        async def lookup() -> tuple[Caller, uuid.UUID] | None:
            async with state.sessionmaker() as session:
                api_key = await domain.find_active_key(session, token)
            if api_key is None:
                return None
            caller = Caller(org_id=api_key.org_id, is_admin=False, scopes=tuple(api_key.scopes))
            return caller, api_key.id

        found = await cache.load(hashlib.sha256(token.encode()).digest(), lookup)
        if found is None:
            raise Unauthorized("unknown or revoked API key")
        return found
    verifier: TokenVerifier | None = state.token_verifier
    if verifier is not None and _looks_like_jwt(token):
        return await verifier.verify(token)
    raise Unauthorized("unknown or revoked API key")


def install(state: Any, settings: GatewaySettings) -> None:
    """Put the key cache and the token verifier on the app's state."""
    state.api_key_cache = ApiKeyCache(settings.api_key_cache_seconds, settings.api_key_cache_size)
    state.token_verifier = TokenVerifier(settings) if settings.jwt_enabled else None


CallerDep = Annotated[Caller, Depends(authenticate)]
