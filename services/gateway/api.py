"""Gateway routes: its own (API keys) and the forwarding of everything else."""

import json
import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from services.gateway import budgets, domain, idempotency
from services.gateway.auth import CallerDep, authenticate
from services.gateway.forwarding import Forwarder, UpstreamFailed, UpstreamResponse
from services.gateway.idempotency import IdempotencyStore, StoredAnswer
from services.gateway.openapi import merge_openapi
from services.gateway.ratelimit import RateLimiter
from services.gateway.schemas import ApiKeyCreated, ApiKeyIn, ApiKeyOut
from services.gateway.settings import GatewaySettings
from shared.errors import DomainError, Forbidden, NotFound, PayloadTooLarge, problem
from shared.identity import Caller, request_target
from shared.pagination import Cursor, Limit, Page, decode_position, encode_cursor, page_of
from shared.service import ROUTE_LABEL, SessionDep

router = APIRouter()

# Every method is forwarded: the owning service answers a method it does not serve with a
# 405 that lists in `Allow` the ones it does.
# Where the fast path (services/gateway/fastpath.py) leaves the route it resolved.
ROUTE_KEY = "mentorbus.upstream_route"
FORWARDED_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE"]


def _own_methods(request: Request) -> list[str]:
    """The methods the gateway's own operations serve at this path (as documented: the
    forwarding catch-alls are not)."""
    methods: set[str] = set()
    for template, item in request.app.openapi()["paths"].items():
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), request.url.path):
            methods |= {m.upper() for m in item}
    return sorted(methods)


async def get_forwarder(request: Request) -> Forwarder:
    """The app's pooled forwarding client."""
    forwarder: Forwarder = request.app.state.forwarder
    return forwarder


ForwarderDep = Annotated[Forwarder, Depends(get_forwarder)]


def _org_of(caller: Caller) -> uuid.UUID:
    if caller.org_id is None:
        raise Forbidden("use an organization API key for this operation")
    return caller.org_id


@router.post("/v1/organizations/{org_id}/api-keys", status_code=201, response_model=ApiKeyCreated)
async def create_api_key(
    org_id: uuid.UUID,
    body: ApiKeyIn,
    caller: CallerDep,
    session: SessionDep,
    forwarder: ForwarderDep,
) -> ApiKeyCreated:
    """Issue an API key for an organization (platform admin only)."""
    if not caller.is_admin:
        raise Forbidden("this operation needs the platform admin token")
    # Profiles owns organizations: ask it whether this one exists.
    answer = await forwarder.forward(
        "profiles", "GET", f"/v1/organizations/{org_id}", [], caller.headers()
    )
    if answer.status == 404:
        raise NotFound(f"organization {org_id} not found")
    if answer.status != 200:
        raise UpstreamFailed(f"profiles answered {answer.status} for the organization")
    api_key, secret_key = await domain.issue_api_key(session, org_id, body.name, body.scopes)
    return ApiKeyCreated.model_validate(
        {**ApiKeyOut.model_validate(api_key).model_dump(), "key": secret_key}
    )


def _key_manager(caller: Caller, method: str) -> uuid.UUID:
    """The organization of a caller allowed to manage its keys (the `keys` scope)."""
    org_id = _org_of(caller)
    needed = f"keys:{'read' if method == 'GET' else 'write'}"
    if not domain.scope_allows(list(caller.scopes), needed):
        raise Forbidden(f"this API key lacks the scope {needed}")
    return org_id


@router.get("/v1/api-keys", response_model=Page[ApiKeyOut])
async def list_api_keys(
    caller: CallerDep, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[ApiKeyOut]:
    """The caller organization's API keys (without secrets); needs the `keys` scope."""
    org_id = _key_manager(caller, "GET")
    after = decode_position(cursor, id=uuid.UUID)
    keys = await domain.list_api_keys(
        session, org_id, after=after["id"] if after else None, limit=limit + 1
    )
    return page_of(keys, limit, ApiKeyOut.model_validate, lambda k: encode_cursor({"id": k.id}))


@router.delete("/v1/api-keys/{key_id}", status_code=204)
async def revoke_api_key(
    key_id: uuid.UUID, caller: CallerDep, session: SessionDep, request: Request
) -> Response:
    """Revoke one of the caller organization's keys: it stops working at once through this
    gateway replica, and through the others within `MENTORBUS_API_KEY_CACHE_SECONDS`. Needs
    the `keys` scope, and never revokes a key with wider scopes than the caller's."""
    org_id = _key_manager(caller, "DELETE")
    await domain.revoke_api_key(session, org_id, key_id, list(caller.scopes))
    request.app.state.api_key_cache.forget(key_id)
    return Response(status_code=204)


async def _bounded_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) one over `limit` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared is None and "transfer-encoding" not in request.headers:
        return b""  # HTTP/1.1: no length and no chunks is no body (RFC 9112 section 6.3)
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request bodies on this route are limited to {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"request bodies on this route are limited to {limit} bytes")
    return bytes(body)


def _credential(request: Request, caller: Caller) -> str:
    """Whose budget a request draws from: its API key (by id), else its end user."""
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    parsed = domain.parse_key(token)
    if parsed is not None:
        return parsed[0].hex
    return f"{caller.org_id}:{caller.subject}"


def _response(answer: StoredAnswer, extra: dict[str, str]) -> Response:
    """The service's answer (its headers, then `extra`'s, which replace any of the same
    name), built as raw headers at once: this runs for every forwarded request."""
    response = Response(content=answer.body, status_code=answer.status)
    replaced = {name.lower() for name in extra}
    kept = [(n, v) for n, v in answer.headers if n.lower() not in replaced]
    response.raw_headers += [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in [*kept, *extra.items()]
    ]
    return response


async def forward(request: Request, forwarder: Forwarder) -> Response:
    """Authenticate, authorize, count and forward a request to the service that owns its
    path (a 404, or 405 with `Allow`, if none does)."""
    path: str = request.scope["path"]
    route: domain.Route | None = request.scope.get(ROUTE_KEY) or domain.resolve_route(path)
    if route is None:
        own = _own_methods(request)
        if own:
            return problem(
                405, "Method not allowed", f"{request.method} is not served at {path}",
                headers={"Allow": ", ".join(own)},
            )  # fmt: skip
        raise NotFound(f"no resource at {path}")
    request.scope[ROUTE_LABEL] = route.pattern  # metrics per public route, not per catch-all
    # A public route (a secret calendar-feed link) carries its own secret in the path.
    caller = Caller(org_id=None, is_admin=False) if route.public else await authenticate(request)
    if route.public:
        pass
    elif route.scope == "organizations":
        if not caller.is_admin and request.method != "GET":
            raise Forbidden("this operation needs the platform admin token")
    else:
        _org_of(caller)
        needed = domain.required_scope(route, request.method)
        # Scopes limit API keys; an end user (JWT, `subject` set) has none and is limited
        # by role at the services instead (shared.identity.require_scope does the same).
        if caller.subject is None and not domain.scope_allows(list(caller.scopes), needed):
            raise Forbidden(f"this API key lacks the scope {needed}")
    settings: GatewaySettings = request.app.state.settings
    kind = budgets.route_class(path, request.method)
    extra: dict[str, str] = {}
    if not caller.is_admin and not route.public:
        limiter: RateLimiter = request.app.state.rate_limiter
        extra = await limiter.hit(
            budgets.budgets_for(settings, _credential(request, caller), str(caller.org_id), kind)
        )
    try:
        return await _forward_counted(request, route, caller, forwarder, kind, extra)
    except DomainError as exc:
        # Errors too tell the client where it stands with its budgets.
        exc.headers = {**extra, **(exc.headers or {})}
        raise


async def _forward_counted(
    request: Request,
    route: domain.Route,
    caller: Caller,
    forwarder: Forwarder,
    kind: budgets.RouteClass,
    extra: dict[str, str],
) -> Response:
    """Read the body within its route's limit and forward it; a POST with an
    Idempotency-Key is answered through the idempotency store."""
    settings: GatewaySettings = request.app.state.settings
    body = await _bounded_body(request, budgets.body_limit(settings, kind))
    # Forward exactly the path that was checked, as it arrived (never re-normalized).
    raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
    target = request_target(raw_path, request.scope["query_string"])

    async def send() -> StoredAnswer:
        answer: UpstreamResponse = await forwarder.forward(
            route.service, request.method, target.decode(), request.headers.items(),
            caller.headers(), body,
        )  # fmt: skip
        return StoredAnswer(answer.status, answer.headers, answer.body)

    key = request.headers.get(idempotency.HEADER)
    if request.method != "POST" or key is None or route.public:
        return _response(await send(), extra)
    store: IdempotencyStore = request.app.state.idempotency
    owner = str(caller.org_id) if caller.org_id else "admin"
    print_ = idempotency.fingerprint("POST", target, body)
    answer, replayed = await store.run(owner, idempotency.valid_key(key), print_, send)
    return _response(answer, {**extra, idempotency.REPLAYED_HEADER: "true"} if replayed else extra)


UPSTREAMS = ("profiles", "matching", "sessions", "feedback")
DOCS_ASSETS_URL = "/docs/assets"


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request, forwarder: ForwarderDep) -> JSONResponse:
    """The whole public API: the gateway's operations and every service's public paths."""
    specs: dict[str, dict[str, Any]] = {}
    for service in UPSTREAMS:
        try:
            answer = await forwarder.forward(service, "GET", "/openapi.json", [], {})
        except DomainError:
            continue  # a service that is down is left out until it is back
        if answer.status == 200:
            specs[service] = json.loads(answer.body)
    merged = merge_openapi(request.app.openapi(), specs)
    merged["servers"] = [{"url": str(request.base_url).rstrip("/"), "description": "this gateway"}]
    return JSONResponse(merged)


@router.get("/docs", include_in_schema=False)
async def docs() -> HTMLResponse:
    """Swagger UI, its assets served by the gateway itself (no CDN, works offline)."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Mentorbus API",
        swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
    )


@router.api_route("/v1/{path:path}", methods=FORWARDED_METHODS, include_in_schema=False)
async def forward_v1(request: Request, forwarder: ForwarderDep) -> Response:
    """Everything under /v1 that the gateway does not answer itself."""
    return await forward(request, forwarder)


@router.api_route("/scim/v2/{path:path}", methods=FORWARDED_METHODS, include_in_schema=False)
async def forward_scim(request: Request, forwarder: ForwarderDep) -> Response:
    """SCIM 2.0 provisioning, answered by profiles."""
    return await forward(request, forwarder)
