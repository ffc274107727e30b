"""SCIM clients read errors in SCIM's own schema (RFC 7644 §3.12), on every `/scim/v2`
answer: the gateway's own refusals there (401, 403, 404, 413, 502...) are rendered so too.

The services' answers pass through untouched (profiles' SCIM door already speaks SCIM);
this only rewrites the problem+json the gateway itself produces on SCIM paths."""

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from shared.errors import DomainError

SCIM_PREFIX = "/scim/"
SCIM_JSON = "application/scim+json"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"

_Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def is_scim_path(path: str) -> bool:
    """Whether a request path belongs to the SCIM door."""
    return path == "/scim" or path.startswith(SCIM_PREFIX)


def as_scim_error(response: Response) -> Response:
    """The same error as a SCIM Error message (same status and headers)."""
    try:
        problem = json.loads(bytes(response.body))
    except ValueError:
        problem = {}
    detail = problem.get("detail") or problem.get("title") or "error"
    body: dict[str, Any] = {
        "schemas": [ERROR_SCHEMA],
        "status": str(response.status_code),
        "detail": str(detail),
    }
    if response.status_code in (400, 422):
        body["scimType"] = "invalidValue"
    headers = {
        k: v
        for k, v in response.headers.items()
        if k.lower() not in ("content-length", "content-type")
    }
    if response.status_code == 401:
        headers.setdefault("www-authenticate", 'Bearer realm="mentorbus"')
    return JSONResponse(
        body, status_code=response.status_code, headers=headers, media_type=SCIM_JSON
    )


def install(app: FastAPI) -> None:
    """Wrap the app's error handlers so SCIM paths get SCIM errors; call after the
    problem+json handlers are installed."""
    for key in (DomainError, RequestValidationError, StarletteHTTPException, Exception):
        original = app.exception_handlers.get(key)
        if original is not None:
            app.add_exception_handler(key, _scim_aware(original))


def _scim_aware(original: _Handler) -> Callable[[Request, Any], Awaitable[Response]]:
    async def handler(request: Request, exc: Any) -> Response:
        response = original(request, exc)
        if inspect.isawaitable(response):
            response = await response
        return as_scim_error(response) if is_scim_path(request.url.path) else response

    return handler
