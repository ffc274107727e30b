"""Rate limits shared by every gateway replica: fixed-window counters in the gateway's
PostgreSQL. Answers carry `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-
headers); over a limit, 429 problem+json with `Retry-After`.

A replica does not count every request in PostgreSQL: it reserves a lease of a budget (one
upsert adds the lease's size to the shared counter) and spends it in memory, so a busy key
costs one statement per lease instead of one per request. A lease is at most 1/50 of the
limit (`LEASE_SHARE`), and only what still fits under the limit is granted: the replicas
together never admit more than the limit in a window. What a replica leased and did not
spend is lost when the window ends, so with several replicas a client may be refused up
to (replicas - 1) x limit/50 requests early; `RateLimit`'s remaining count is this
replica's view (exact with one replica). A small limit (under 100) is leased one request
at a time: counted exactly, as before.

A fixed window lets a client that waits for the boundary send up to twice a limit within a
few seconds; that is the price of cheap counting, and each window still holds at most its
limit.
"""

import asyncio
import time
from dataclasses import dataclass

import asyncpg

from services.gateway.budgets import Budget
from shared.errors import DomainError

# A lease is at most this share of a budget's limit (and at least one request).
LEASE_SHARE = 50

# Adds each lease to its counter and returns the new totals (`hits` counts reservations:
# past the limit it grows beyond it, as refused requests keep asking).
_RESERVE = """
INSERT INTO rate_limit_counter AS c (bucket, window_start, hits)
SELECT bucket, $2::bigint, size FROM unnest($1::text[], $3::int[]) AS t(bucket, size)
ON CONFLICT (bucket, window_start) DO UPDATE SET hits = c.hits + EXCLUDED.hits
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
    """The answer's rate-limit headers for these counts (`hits`: the requests counted
    against each bucket in this window, this one included). Pure: no I/O."""
    reset = max(1, window - int(now) % window)
    policy = ", ".join(f'"{b.policy}";q={b.limit};w={window}' for b in budgets)
    state = ", ".join(
        f'"{b.policy}";r={max(0, b.limit - hits[b.bucket])};t={reset}' for b in budgets
    )
    exceeded = next((b for b in budgets if hits[b.bucket] > b.limit), None)
    return Decision({"RateLimit-Policy": policy, "RateLimit": state}, exceeded, reset)


def lease_size(limit: int) -> int:
    """How many requests of a budget one reservation takes."""
    return max(1, limit // LEASE_SHARE)


def granted(limit: int, size: int, total: int) -> int:
    """How much of a lease of `size` fits under `limit`, the counter now at `total` (this
    lease included)."""
    return max(0, min(size, limit - (total - size)))


@dataclass
class _Lease:
    """What this replica may still admit of one bucket in one window."""

    window_start: int
    left: int
    # The shared counter once this lease was reserved, less what the lease could not get:
    # what the other replicas reserved plus what this one did.
    reserved: int
    # Nothing fitted: the budget is spent until the window ends (counters only grow).
    spent: bool


class RateLimiter:
    """Counts requests against budgets: leases reserved in PostgreSQL, spent in memory."""

    def __init__(self, pool: asyncpg.Pool, window_seconds: int) -> None:
        self.pool = pool
        self.window = window_seconds
        self._leases: dict[str, _Lease] = {}
        # Buckets being reserved right now: other requests for them wait for that one.
        self._reserving: dict[str, asyncio.Future[None]] = {}

    async def hit(self, budgets: list[Budget]) -> dict[str, str]:
        """Count one request against each budget; the headers for the answer, or
        RateLimited (with those headers and Retry-After) when a budget is spent."""
        if not budgets:
            return {}
        now = time.time()
        window_start = int(now) - int(now) % self.window
        while True:
            # A lease being reserved is waited for, not reserved twice; and a lease may be
            # spent by others while this request waits: check again after every await.
            reserving = self._reserving
            if waiting := [reserving[b.bucket] for b in budgets if b.bucket in reserving]:
                await asyncio.wait(waiting)
                continue
            empty = [b for b in budgets if not self._has_lease(b.bucket, window_start)]
            if not empty:
                break
            await self._reserve(empty, window_start)
        # No await from here on: the leases checked are the leases spent.
        hits: dict[str, int] = {}
        for b in budgets:
            lease = self._leases[b.bucket]
            if lease.spent:
                hits[b.bucket] = b.limit + 1
            else:
                lease.left -= 1
                hits[b.bucket] = lease.reserved - lease.left
        decision = decide(budgets, hits, self.window, now)
        if decision.exceeded is not None:
            headers = {**decision.headers, "Retry-After": str(decision.retry_after)}
            raise RateLimited(
                f"the {decision.exceeded.policy} budget of {decision.exceeded.limit} requests "
                f"per {self.window} s is spent; retry after {decision.retry_after} s",
                headers,
            )
        return decision.headers

    def _has_lease(self, bucket: str, window_start: int) -> bool:
        """Whether this replica may decide for `bucket` in this window without PostgreSQL:
        it holds part of a lease, or knows the budget is spent."""
        lease = self._leases.get(bucket)
        if lease is None or lease.window_start != window_start:
            return False
        return lease.left > 0 or lease.spent

    async def _reserve(self, budgets: list[Budget], window_start: int) -> None:
        """Reserve a fresh lease of each budget, in one statement."""
        # Sorted, so two statements lock shared counters in the same order (no deadlock).
        ordered = sorted(budgets, key=lambda b: b.bucket)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for b in ordered:
            self._reserving[b.bucket] = done
        try:
            sizes = [lease_size(b.limit) for b in ordered]
            rows = await self.pool.fetch(_RESERVE, [b.bucket for b in ordered], window_start, sizes)
            totals = {r["bucket"]: r["hits"] for r in rows}
            for b, size in zip(ordered, sizes, strict=True):
                got = granted(b.limit, size, totals[b.bucket])
                reserved = totals[b.bucket] - size + got
                self._leases[b.bucket] = _Lease(window_start, got, reserved, spent=got == 0)
        finally:
            for b in ordered:
                del self._reserving[b.bucket]
            done.set_result(None)

    async def purge(self) -> None:
        """Drop counters and leases of windows that have ended."""
        now = int(time.time())
        current = now - now % self.window
        for bucket in [k for k, v in self._leases.items() if v.window_start < current]:
            del self._leases[bucket]
        await self.pool.execute("DELETE FROM rate_limit_counter WHERE window_start < $1", current)
