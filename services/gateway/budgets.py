"""What one request may cost: the body size each route accepts, and the rate budgets it
draws from. Pure rules, no I/O.

Every request of an API key draws from the key's budget. The expensive routes also draw
from their organization's budget for that kind of work, so that one tenant's bulk syncs,
SCIM provisioning or matching runs cannot crowd out the others however many keys it uses.
"""

import re
from dataclasses import dataclass
from typing import Literal

from services.gateway.settings import GatewaySettings

RouteClass = Literal["bulk", "scim", "runs", "default"]

_BULK = re.compile(r"^/v1/employees/bulk$")
_RUNS = re.compile(r"^/v1/programs/[^/]+/matching-runs$")


def route_class(path: str, method: str) -> RouteClass:
    """The cost class of a request: `bulk` (HRIS bulk sync), `scim` (SCIM provisioning),
    `runs` (starting a matching run) or `default`."""
    if path.startswith("/scim/"):
        return "scim"
    if method == "POST" and _BULK.match(path):
        return "bulk"
    if method == "POST" and _RUNS.match(path):
        return "runs"
    return "default"


def body_limit(settings: GatewaySettings, kind: RouteClass) -> int:
    """The largest request body (bytes) a route of this class accepts."""
    return {
        "bulk": settings.max_body_bytes_bulk,
        "scim": settings.max_body_bytes_scim,
        "runs": settings.max_body_bytes_runs,
        "default": settings.max_body_bytes,
    }[kind]


@dataclass(frozen=True)
class Budget:
    """A counter's name, how many requests it allows per window, and its policy name (the
    `RateLimit-Policy` item clients see)."""

    bucket: str
    limit: int
    policy: str


def budgets_for(
    settings: GatewaySettings, credential: str, org: str | None, kind: RouteClass
) -> list[Budget]:
    """The budgets a request draws from: its credential's, and for an expensive route its
    organization's budget for that class. A limit of 0 is no limit."""
    found = []
    if settings.rate_limit_requests > 0:
        found.append(Budget(f"key:{credential}", settings.rate_limit_requests, "key"))
    if kind != "default" and org is not None:
        limit = {
            "bulk": settings.rate_limit_bulk,
            "scim": settings.rate_limit_scim,
            "runs": settings.rate_limit_runs,
        }[kind]
        if limit > 0:
            found.append(Budget(f"org:{org}:{kind}", limit, kind))
    return found
