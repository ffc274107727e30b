"""Domain errors (no HTTP in them) and their RFC 9457 problem+json rendering."""

import logging
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


@dataclass
class FieldError:
    """One bad input field, by dotted path."""

    field: str
    message: str


class DomainError(Exception):
    """Base of the errors domain code raises; each maps to one HTTP status."""

    status = 400
    title = "Bad request"
    # Response headers the answer carries (e.g. Retry-After).
    headers: dict[str, str] | None = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    """The resource does not exist in the caller's organization."""

    status = 404
    title = "Not found"


class Conflict(DomainError):
    """The request conflicts with the resource's current state."""

    status = 409
    title = "Conflict"


class PreconditionFailed(DomainError):
    """An `If-Match` precondition did not hold."""

    status = 412
    title = "Precondition failed"


class Forbidden(DomainError):
    """The caller may not do this."""

    status = 403
    title = "Forbidden"


class PayloadTooLarge(DomainError):
    """The request body is larger than accepted."""

    status = 413
    title = "Content too large"


class Unauthorized(DomainError):
    """No valid credentials."""

    status = 401
    title = "Unauthorized"


@dataclass
class InvalidInput(DomainError):
    """Input that passed the schema but breaks a rule (e.g. a manager cycle)."""

    errors: list[FieldError] = field(default_factory=list)
    status = 422
    title = "Unprocessable content"

    def __post_init__(self) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in self.errors))


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An RFC 9457 response; a 422 also names each bad field."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_path(loc: tuple[Any, ...]) -> str:
    # Drop the "body"/"query"/"path" prefix: clients know fields, not FastAPI's sources.
    parts = (
        [str(p) for p in loc[1:]]
        if loc and loc[0] in {"body", "query", "path", "header"}
        else [str(p) for p in loc]
    )
    return ".".join(parts) or str(loc[0] if loc else "body")


CANDIDATE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route of `app` serves at `path` (Starlette's own 405 names only
    the methods of the first route whose path matches)."""
    literal: list[str] = []
    templated: list[str] = []
    for method in CANDIDATE_METHODS:
        scope = {"type": "http", "path": path, "method": method, "root_path": ""}
        for route in _leaf_routes(app.router.routes):
            if route.matches(scope)[0] == Match.FULL:
                (templated if "{" in getattr(route, "path", "{") else literal).append(method)
    # As in OpenAPI, a concrete path (`/v1/employees/bulk`) beats a template that also
    # matches it (`/v1/employees/{external_id}`).
    return sorted(set(literal or templated))


def _leaf_routes(routes: list[BaseRoute]) -> list[BaseRoute]:
    """Routes with included routers flattened (a mounted app counts as one route; routers
    are included without a prefix here)."""
    leaves: list[BaseRoute] = []
    for route in routes:
        # FastAPI wraps an included router (its `original_router` holds the routes).
        router = getattr(route, "original_router", route)
        nested = getattr(router, "routes", None)
        if nested is not None and not isinstance(route, Mount):
            leaves.extend(_leaf_routes(list(nested)))
        else:
            leaves.append(route)
    return leaves


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error as problem+json, never as HTML or a bare 500."""

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        errors = exc.errors if isinstance(exc, InvalidInput) else None
        return problem(exc.status, exc.title, exc.detail, errors=errors, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            FieldError(
                "body" if e["type"] == "json_invalid" else _field_path(tuple(e["loc"])),
                e["msg"].removeprefix("Value error, "),
            )
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return problem(422, "Unprocessable content", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's answer to a body it cannot decode: like malformed JSON, a 422 on `body`.
            errors = [FieldError("body", str(exc.detail))]
            return problem(422, "Unprocessable content", str(exc.detail), errors=errors)
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        headers = dict(exc.headers) if exc.headers else {}
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path))
        return problem(exc.status_code, title, str(exc.detail), headers=headers or None)

    @app.exception_handler(ClientDisconnect)
    async def _disconnected(request: Request, _: ClientDisconnect) -> Response:
        # The client hung up before sending its whole body: nothing to answer, and not
        # our error. One line, no traceback; the response goes nowhere.
        log.warning("client disconnected mid-request: %s %s", request.method, request.url.path)
        return Response(status_code=400)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem(500, "Internal server error", "An unexpected error occurred.")
