"""Who is calling: the gateway authenticates and passes the caller to services in these
headers (it strips any a client sends). Services trust them; only the gateway is public."""

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from shared.errors import Forbidden, Unauthorized

ORG_HEADER = "x-mentorbus-org-id"
SCOPES_HEADER = "x-mentorbus-scopes"
ADMIN_HEADER = "x-mentorbus-admin"
IDENTITY_HEADERS = (ORG_HEADER, SCOPES_HEADER, ADMIN_HEADER)


@dataclass(frozen=True)
class Caller:
    """The authenticated caller: a platform admin, or an organization's API key."""

    org_id: uuid.UUID | None
    is_admin: bool
    scopes: tuple[str, ...] = ()

    def headers(self) -> dict[str, str]:
        """The identity headers the gateway sends to a service for this caller."""
        headers = {SCOPES_HEADER: ",".join(self.scopes)}
        if self.org_id is not None:
            headers[ORG_HEADER] = str(self.org_id)
        if self.is_admin:
            headers[ADMIN_HEADER] = "true"
        return headers


def caller_from_request(request: Request) -> Caller:
    """Read the identity the gateway attached."""
    raw_org = request.headers.get(ORG_HEADER)
    try:
        org_id = uuid.UUID(raw_org) if raw_org else None
    except ValueError:
        raise Unauthorized("malformed organization identity") from None
    scopes = tuple(s for s in request.headers.get(SCOPES_HEADER, "").split(",") if s)
    return Caller(
        org_id=org_id, is_admin=request.headers.get(ADMIN_HEADER) == "true", scopes=scopes
    )


def require_org(request: Request) -> uuid.UUID:
    """The caller's organization; every tenant-scoped route depends on it."""
    caller = caller_from_request(request)
    if caller.org_id is None:
        raise Unauthorized("an organization API key is required")
    return caller.org_id


def require_admin(request: Request) -> Caller:
    """Only the platform admin passes."""
    caller = caller_from_request(request)
    if not caller.is_admin:
        raise Forbidden("this operation needs the platform admin token")
    return caller


OrgId = Annotated[uuid.UUID, Depends(require_org)]
AdminCaller = Annotated[Caller, Depends(require_admin)]
