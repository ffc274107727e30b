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
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        headers = dict(exc.headers) if exc.headers else None
        return problem(exc.status_code, title, str(exc.detail), headers=headers)

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
