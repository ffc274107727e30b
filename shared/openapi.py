"""OpenAPI that tells the truth, generated from the code: every service's schema goes through
`document_service`, so every route (including routes added later) documents the
problem+json answers it can give without each route listing them.

FastAPI documents a 422 as its own `{"detail": [...]}` shape and nothing else; our services
answer RFC 9457 `application/problem+json` (shared/errors.py). What each operation can
answer is read from the operation itself:
- 401/403: every tenant or admin operation (no valid identity; a key without the scope, a
  member on an admin-only operation);
- 404: an operation with path parameters or a body (an id that is not in the caller's
  organization, or that a body names);
- 409: every write (a state conflict, a concurrent write winning a unique constraint);
- 412: an operation that takes `If-Match`;
- 422: an operation with parameters or a body (`errors` names each bad field).
The gateway adds what only it answers (services/gateway/openapi.py).
"""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

PROBLEM_JSON = "application/problem+json"
SCHEMA_REF = "#/components/schemas/"
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# Operations that need no credentials and say nothing about a tenant.
OPERATIONS_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"})

PROBLEM_SCHEMAS: dict[str, Any] = {
    "FieldError": {
        "type": "object",
        "description": "One bad input field.",
        "properties": {
            "field": {"type": "string", "description": "Dotted path, e.g. `skills.0.level`"},
            "message": {"type": "string"},
        },
        "required": ["field", "message"],
    },
    "Problem": {
        "type": "object",
        "description": "An RFC 9457 problem details object (`application/problem+json`).",
        "properties": {
            "type": {"type": "string", "description": "URI of the type", "default": "about:blank"},
            "title": {"type": "string", "description": "Short summary of the problem type"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string", "description": "What went wrong with this request"},
            "errors": {
                "type": "array",
                "items": {"$ref": f"{SCHEMA_REF}FieldError"},
                "description": "Each bad field (a 422 only)",
            },
        },
        "required": ["type", "title", "status", "detail"],
    },
    "ValidationProblem": {
        "type": "object",
        "description": "A 422 problem: the request was well-formed but names bad fields.",
        "properties": {
            "type": {"type": "string", "default": "about:blank"},
            "title": {"type": "string"},
            "status": {"type": "integer", "enum": [422]},
            "detail": {"type": "string"},
            "errors": {"type": "array", "items": {"$ref": f"{SCHEMA_REF}FieldError"}},
        },
        "required": ["type", "title", "status", "detail", "errors"],
    },
}

# status -> (description, title used in the example)
STATUS_TEXT: dict[int, tuple[str, str]] = {
    400: ("Bad request", "Bad request"),
    401: ("No valid credentials (missing, unknown, revoked or expired)", "Unauthorized"),
    403: ("The credentials do not allow this operation", "Forbidden"),
    404: ("Not found in the caller's organization", "Not found"),
    409: ("Conflicts with the resource's current state", "Conflict"),
    412: ("An `If-Match` precondition did not hold", "Precondition failed"),
    413: ("The request body is too large", "Content too large"),
    422: ("A field is invalid; `errors` names each one", "Unprocessable content"),
    429: ("Too many requests; retry after `Retry-After` seconds", "Too many requests"),
    502: ("The service behind this path broke the exchange", "Bad gateway"),
    503: ("The service behind this path is unavailable; retry later", "Service unavailable"),
    504: ("The service behind this path did not answer in time", "Gateway timeout"),
}


def problem_response(status: int) -> dict[str, Any]:
    """The OpenAPI response object of a problem+json answer with this status."""
    description, title = STATUS_TEXT.get(status, ("Error", "Error"))
    schema = "ValidationProblem" if status == 422 else "Problem"
    example: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": description,
    }
    if status == 422:
        example["errors"] = [{"field": "time_zone", "message": "not an IANA time zone"}]
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": SCHEMA_REF + schema}, "example": example}},
    }


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every (path, method, operation) of a spec."""
    return [
        (path, method, op)
        for path, item in spec.get("paths", {}).items()
        for method, op in item.items()
        if method in HTTP_METHODS and isinstance(op, dict)
    ]


def _has_params(op: dict[str, Any]) -> bool:
    return bool(op.get("parameters")) or "requestBody" in op


def _has_path_params(op: dict[str, Any]) -> bool:
    return any(p.get("in") == "path" for p in op.get("parameters", []))


def _has_header(op: dict[str, Any], name: str) -> bool:
    return any(
        p.get("in") == "header" and p.get("name", "").lower() == name.lower()
        for p in op.get("parameters", [])
    )


def add_problems(op: dict[str, Any], statuses: list[int]) -> None:
    """Document these problem answers on an operation (those it documents itself stay)."""
    responses = op.setdefault("responses", {})
    for status in statuses:
        responses.setdefault(str(status), problem_response(status))


def service_statuses(path: str, method: str, op: dict[str, Any]) -> list[int]:
    """The problem answers a service itself can give for this operation."""
    if path in OPERATIONS_PATHS:
        return []
    statuses = [401, 403]
    if _has_path_params(op) or "requestBody" in op:
        statuses.append(404)
    if method in WRITE_METHODS:
        statuses.append(409)
    if _has_header(op, "If-Match"):
        statuses.append(412)
    if _has_params(op):
        statuses.append(422)
    return statuses


def document_service(spec: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a FastAPI schema in place to tell the truth about errors: FastAPI's
    `HTTPValidationError` 422 becomes the problem+json `ValidationProblem`, and every
    problem answer an operation can give is documented (see the module docstring)."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.update(PROBLEM_SCHEMAS)
    for path, method, op in operations(spec):
        if op.get("x-protocol") == "scim":
            continue  # SCIM documents its own errors (scim+json)
        responses = op.setdefault("responses", {})
        responses.pop("422", None)  # FastAPI's shape, never what we answer
        add_problems(op, service_statuses(path, method, op))
    if "/readyz" in spec.get("paths", {}):
        add_problems(spec["paths"]["/readyz"]["get"], [503])
    return spec


def install(app: FastAPI, extend: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Make `app.openapi()` answer the truthful schema (built once, then cached).
    `extend` adds what FastAPI cannot see (e.g. a mounted protocol's paths) first."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if getattr(app.state, "openapi_documented", False) and app.openapi_schema:
            return app.openapi_schema
        spec = generate()
        if extend is not None:
            extend(spec)
        app.openapi_schema = document_service(spec)
        app.state.openapi_documented = True
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
