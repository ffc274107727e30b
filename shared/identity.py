"""Who is calling: the gateway authenticates and passes the caller to services in these
headers (it strips any a client sends). Services trust them; only the gateway is public.

Three kinds of caller reach a service:
- the platform admin (`is_admin`, no organization);
- an organization's API key, or an end user whose token says `role: admin`: the whole
  organization (`role == "admin"`), limited by `scopes`;
- an end user with `role: member` (`subject` is their employee `external_id`): only what is
  theirs (their enrollments, matches they are in and everything hanging off those, their own
  feedback requests, availability and calendar). Services enforce this with `is_member` and
  `subject`: another person's resource is a 404 (an id) or 403 (an admin-only list).
"""

import uuid
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request

from shared.errors import Forbidden, Unauthorized

ORG_HEADER = "x-mentorbus-org-id"
SCOPES_HEADER = "x-mentorbus-scopes"
ADMIN_HEADER = "x-mentorbus-admin"
SUBJECT_HEADER = "x-mentorbus-subject"
ROLE_HEADER = "x-mentorbus-role"
IDENTITY_HEADERS = (ORG_HEADER, SCOPES_HEADER, ADMIN_HEADER, SUBJECT_HEADER, ROLE_HEADER)

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


def caller_from_request(request: Request) -> Caller:
    """Read the identity the gateway attached."""
    raw_org = request.headers.get(ORG_HEADER)
    try:
        org_id = uuid.UUID(raw_org) if raw_org else None
    except ValueError:
        raise Unauthorized("malformed organization identity") from None
    scopes = tuple(s for s in request.headers.get(SCOPES_HEADER, "").split(",") if s)
    role: Role = "member" if request.headers.get(ROLE_HEADER) == "member" else "admin"
    subject = request.headers.get(SUBJECT_HEADER) or None
    if role == "member" and subject is None:
        raise Unauthorized("a member identity names no subject")
    return Caller(
        org_id=org_id,
        is_admin=request.headers.get(ADMIN_HEADER) == "true",
        scopes=scopes,
        subject=subject,
        role=role,
    )


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
