"""`Idempotency-Key` on POSTs, shared by every gateway replica (records in the gateway's
PostgreSQL). The first request with a key runs and its answer is stored; a retry with the
same key and the same request replays that answer (`Idempotent-Replayed: true`); the same
key with another request is a 422; while the first still runs, 409. Keys are per
organization and live `idempotency_ttl_hours` (24 h).

Answers of 5xx (and failures to reach a service) are not stored: the record is dropped so
that a retry runs again. A record left running by a crashed gateway is taken over once it is
older than `stale_after_seconds`.
"""

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from shared.errors import Conflict, FieldError, InvalidInput

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255

_CLAIM = """
INSERT INTO idempotency_record AS r (owner, idempotency_key, fingerprint, expires_at)
VALUES ($1, $2, $3, now() + make_interval(hours => $4))
ON CONFLICT (owner, idempotency_key) DO UPDATE
SET fingerprint = EXCLUDED.fingerprint, status = NULL, headers = NULL, body = NULL,
    created_at = now(), expires_at = EXCLUDED.expires_at
WHERE r.expires_at < now()
   OR (r.status IS NULL AND r.created_at < now() - make_interval(secs => $5))
RETURNING 1
"""
_EXISTING = """
SELECT fingerprint, status, headers, body FROM idempotency_record
WHERE owner = $1 AND idempotency_key = $2
"""


@dataclass(frozen=True)
class StoredAnswer:
    """The first request's answer, to replay."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def valid_key(value: str) -> str:
    """The header's value if usable as a key (1-255 visible ASCII characters), else 422."""
    if not 0 < len(value) <= MAX_KEY_LENGTH or not value.isascii() or not value.isprintable():
        raise InvalidInput(
            [FieldError(HEADER, f"must be 1-{MAX_KEY_LENGTH} visible ASCII characters")]
        )
    return value


def fingerprint(method: str, target: bytes, body: bytes) -> bytes:
    """What makes two requests "the same request" for a key."""
    return hashlib.sha256(method.encode() + b"\0" + target + b"\0" + body).digest()


class IdempotencyStore:
    """Claims keys, stores answers and finds them again."""

    def __init__(self, pool: asyncpg.Pool, ttl_hours: int, stale_after_seconds: float) -> None:
        self.pool = pool
        self.ttl_hours = ttl_hours
        self.stale_after = stale_after_seconds

    async def claim(self, owner: str, key: str, print_: bytes) -> StoredAnswer | None:
        """None if this request now owns the key (run it, then `finish` or `abandon`);
        the stored answer to replay; Conflict (409) while the first request still runs;
        InvalidInput (422) if the key was used for another request."""
        for _ in range(3):  # a record may expire or be abandoned between the two statements
            if await self.pool.fetchval(
                _CLAIM, owner, key, print_, self.ttl_hours, self.stale_after
            ):
                return None
            row = await self.pool.fetchrow(_EXISTING, owner, key)
            if row is None:
                continue
            if row["fingerprint"] != print_:
                raise InvalidInput(
                    [FieldError(HEADER, "this key was already used for another request")]
                )
            if row["status"] is None:
                raise Conflict("a request with this Idempotency-Key is still being processed")
            headers = [(str(k), str(v)) for k, v in json.loads(row["headers"])]
            return StoredAnswer(row["status"], headers, bytes(row["body"]))
        raise Conflict("a request with this Idempotency-Key is still being processed")

    async def finish(self, owner: str, key: str, answer: StoredAnswer) -> None:
        """Store the answer of the request that owns the key."""
        await self.pool.execute(
            "UPDATE idempotency_record SET status = $3, headers = $4, body = $5"
            " WHERE owner = $1 AND idempotency_key = $2",
            owner, key, answer.status, json.dumps(answer.headers), answer.body,
        )  # fmt: skip

    async def abandon(self, owner: str, key: str) -> None:
        """Forget a claim whose request failed, so that a retry runs again."""
        await self.pool.execute(
            "DELETE FROM idempotency_record WHERE owner = $1 AND idempotency_key = $2"
            " AND status IS NULL",
            owner, key,
        )  # fmt: skip

    async def run(
        self, owner: str, key: str, print_: bytes, send: Callable[[], Awaitable[StoredAnswer]]
    ) -> tuple[StoredAnswer, bool]:
        """The answer to a request with an Idempotency-Key, and whether it is a replay:
        the stored answer of an earlier identical request, or `send()`'s (stored unless it
        is a 5xx or `send` fails, so that a retry runs again)."""
        stored = await self.claim(owner, key, print_)
        if stored is not None:
            return stored, True
        try:
            answer = await send()
        except BaseException:
            await self.abandon(owner, key)
            raise
        if answer.status >= 500:
            await self.abandon(owner, key)
        else:
            await self.finish(owner, key, answer)
        return answer, False

    async def purge(self) -> None:
        """Drop expired records."""
        await self.pool.execute("DELETE FROM idempotency_record WHERE expires_at < now()")
