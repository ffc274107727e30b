"""The ASGI application mounted at /scim: scim2-server's protocol, one transaction per request."""

import asyncio
import uuid
from typing import Any, cast
from urllib.parse import quote

from pydantic_core import from_json, to_json
from scim2_models import (
    Context,
    ForbiddenException,
    PayloadTooLargeException,
    Resource,
    ResponseParameters,
    UnauthorizedException,
    UniquenessException,
)
from scim2_server.applications.asgi import ASGIApplication, Receive, Scope, Send
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.service import ScimService
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.profiles.scim.core import (
    CONTEXT,
    MAX_PAYLOAD,
    RequestContext,
    as_uuid,
    invalid,
)
from services.profiles.scim.patch import normalize_patch, normalize_resource
from services.profiles.scim.provider import build_provider
from services.profiles.scim.storage import PeopleStorage
from shared.db import unstorable_text
from shared.identity import ORG_HEADER, ROLE_HEADER


class ProfilesScimService(ScimService):
    """scim2-server's protocol, answering PATCH with the resource (200), which RFC 7644
    §3.5.2 allows and which identity providers expect more often than a bare 204."""

    def max_body_size(self, request: ScimRequest) -> int | None:
        """maxPayloadSize bounds every request (RFC 7644 names it for bulk; we have none)."""
        return MAX_PAYLOAD

    def patch_response(
        self,
        base_url: str,
        resource: Resource[Any],
        response_parameters: ResponseParameters[Any],
    ) -> ScimResponse:
        """The patched resource, projected by `attributes`/`excludedAttributes` if asked."""
        published = self.publish(base_url, resource)
        return self.resource_response(
            published, Context.RESOURCE_REPLACEMENT_RESPONSE, response_parameters
        )


class ScimApplication(ASGIApplication):
    """scim2-server's ASGI application, one database transaction per request, confined to
    the organization the gateway authenticated."""

    def __init__(self, public_url: str) -> None:
        provider = build_provider()
        super().__init__(PeopleStorage(provider), provider, ProfilesScimService(provider))
        self.public_url = public_url.rstrip("/")
        # The service's sessions, known once the app this one is mounted in has started.
        self._sessionmaker: async_sessionmaker[AsyncSession] | None = None

    def get_base_url(self, scope: Scope) -> str:  # type: ignore[override]
        """Clients reach SCIM through the gateway, so locations name the gateway."""
        return f"{self.public_url}/scim/v2"

    def check_auth(self, request: ScimRequest) -> None:
        """The gateway authenticated the caller and named their organization."""
        if as_uuid(request.header(ORG_HEADER)) is None:
            raise UnauthorizedException(detail="an organization API key is required")
        if request.header(ROLE_HEADER) == "member":
            raise ForbiddenException(detail="provisioning needs organization-wide access")

    def needs_auth(self, request: ScimRequest) -> bool:
        """Every SCIM request is an organization's, discovery included."""
        return True

    async def dispatch_request(self, request: ScimRequest) -> ScimResponse:
        """Serve a request in a transaction committed only if it succeeded."""
        self.check_auth(request)
        if len(request.body) > MAX_PAYLOAD:
            raise PayloadTooLargeException(
                detail=f"SCIM bodies are limited to {MAX_PAYLOAD} bytes (maxPayloadSize)"
            )
        if request.body and request.method.upper() in ("POST", "PUT", "PATCH"):
            # Decoding, normalizing and re-encoding up to a megabyte is CPU work: off the
            # event loop, so other requests (of other tenants) keep being served.
            request.body = await asyncio.to_thread(_normalized, request)
        assert self._sessionmaker is not None, "mounted in a started service app"
        async with self._sessionmaker() as session:
            org_id = cast(uuid.UUID, as_uuid(request.header(ORG_HEADER)))
            token = CONTEXT.set(RequestContext(session, org_id, request.base_url))
            try:
                response = await self.handler.handle(request)
                if int(response.status) < 400:
                    await session.commit()
                return response
            except IntegrityError:
                # A concurrent request took a unique value first (e.g. the userName).
                raise UniquenessException(detail="a concurrent change conflicts") from None
            except DBAPIError as exc:
                if unstorable_text(exc):
                    raise invalid("text may not contain NUL characters") from None
                raise
            finally:
                CONTEXT.reset(token)

    @staticmethod
    async def send_response(response: ScimResponse, send: Send) -> None:
        """Send the response with header values that HTTP allows: a Location naming an id
        with non-ASCII or control characters is percent-encoded (scim2-server sends it
        raw, which the HTTP server refuses)."""
        for name, value in list(response.headers.items()):
            if not (value.isascii() and value.isprintable()):
                response.headers[name] = quote(value, safe="!#$&'()*+,/:;=?@[]~%")
        await ASGIApplication.send_response(response, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve an ASGI request, with the database of the app this one is mounted in."""
        if scope["type"] == "http":
            self._sessionmaker = scope["app"].state.sessionmaker
        await super().__call__(scope, receive, send)


def _normalized(request: ScimRequest) -> bytes:
    """The body with identity providers' dialects made standard (see scim.patch)."""
    try:
        body = from_json(request.body)
    except ValueError:
        return request.body  # scim2-server answers invalidSyntax
    if request.method.upper() == "PATCH":
        body = normalize_patch(body)
    elif not request.path.rstrip("/").endswith(".search"):
        body = normalize_resource(body)
    return to_json(body)


def application(public_url: str) -> ScimApplication:
    """The SCIM application to mount at /scim."""
    return ScimApplication(public_url)
