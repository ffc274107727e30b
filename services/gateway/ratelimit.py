"""Rate limits shared by every gateway replica: fixed-window counters in the gateway's
PostgreSQL, one statement per request (an upsert that counts the hit and returns the
totals). Answers carry `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-
headers); over a limit, 429 problem+json with `Retry-After`.

A fixed window lets a client that waits for the boundary send up to twice a limit within a
few seconds; that is the price of one cheap statement, and each window still holds at most
its limit.
"""

import time
from dataclasses import dataclass

import asyncpg

from services.gateway.budgets import Budget
from shared.errors import DomainError

_HIT = """
INSERT INTO rate_limit_counter AS c (bucket, window_start, hits)
SELECT bucket, $2::bigint, 1 FROM unnest($1::text[]) AS bucket
ON CONFLICT (bucket, window_start) DO UPDATE SET hits = c.hits + 1
RETURNING bucket, hits
"""


class RateLimited(DomainError):
    """Over a budget: 429, retry after the window ends."""

    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, headers: dict[str, str]) -> None:
        super().__init__(detail)
        self.headers = headers


@dataclass(frozen=True)
class Decision:
    """The headers that tell the client where it stands, and whether it is over a limit."""

    headers: dict[str, str]
    exceeded: Budget | None
    retry_after: int


def decide(budgets: list[Budget], hits: dict[str, int], window: int, now: float) -> Decision:
    """The answer's rate-limit headers for these counts (pure: counting happens in SQL)."""
    reset = max(1, window - int(now) % window)
    policy = ", ".join(f'"{b.policy}";q={b.limit};w={window}' for b in budgets)
    state = ", ".join(
        f'"{b.policy}";r={max(0, b.limit - hits[b.bucket])};t={reset}' for b in budgets
    )
    exceeded = next((b for b in budgets if hits[b.bucket] > b.limit), None)
    return Decision({"RateLimit-Policy": policy, "RateLimit": state}, exceeded, reset)


class RateLimiter:
    """Counts requests against budgets in PostgreSQL."""

    def __init__(self, pool: asyncpg.Pool, window_seconds: int) -> None:
        self.pool = pool
        self.window = window_seconds

    async def hit(self, budgets: list[Budget]) -> dict[str, str]:
        """Count one request against each budget; the headers for the answer, or
        RateLimited (with those headers and Retry-After) when a budget is spent."""
        if not budgets:
            return {}
        now = time.time()
        window_start = int(now) - int(now) % self.window
        # Sorted, so two requests lock shared counters in the same order (no deadlock).
        buckets = sorted(b.bucket for b in budgets)
        rows = await self.pool.fetch(_HIT, buckets, window_start)
        decision = decide(budgets, {r["bucket"]: r["hits"] for r in rows}, self.window, now)
        if decision.exceeded is not None:
            headers = {**decision.headers, "Retry-After": str(decision.retry_after)}
            raise RateLimited(
                f"the {decision.exceeded.policy} budget of {decision.exceeded.limit} requests "
                f"per {self.window} s is spent; retry after {decision.retry_after} s",
                headers,
            )
        return decision.headers

    async def purge(self) -> None:
        """Drop counters of windows that have ended."""
        now = int(time.time())
        await self.pool.execute(
            "DELETE FROM rate_limit_counter WHERE window_start < $1", now - now % self.window
        )
