"""One OpenAPI document for the whole public API: the gateway's own operations plus each
service's public paths, merged. Pure functions: no HTTP here."""

import copy
import json
from typing import Any

from services.gateway.domain import resolve_route
from services.gateway.scim_errors import SCIM_JSON
from shared.openapi import OPERATIONS_PATHS, add_problems, operations, problem_response

REF_PREFIX = "#/components/schemas/"

SECURITY_SCHEMES: dict[str, Any] = {
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": (
            "An organization's API key (`mbk_...`), or the platform admin token for "
            "`POST /v1/organizations` and `POST /v1/organizations/{id}/api-keys`. "
            "Verified keys are cached for `MENTORBUS_API_KEY_CACHE_SECONDS`: a revoked key "
            "stops working on every gateway replica within that time."
        ),
    },
    "endUserToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": (
            "An end user's token from the organization's identity provider (RS256/ES256), "
            "checked against `MENTORBUS_JWT_PUBLIC_KEY` or `MENTORBUS_JWT_JWKS_URL` with "
            "the configured issuer and audience. Claims: `sub` (the employee's "
            "`external_id`), `org_id`, `role` (`admin` | `member`). A member sees only "
            "what is theirs: another person's resource is a 404, an admin-only list a 403."
        ),
    },
}
AUTHENTICATED: list[dict[str, list[str]]] = [{"apiKey": []}, {"endUserToken": []}]
# Operations the gateway answers itself that still call a service (and so can fail like
# a forwarded one).
GATEWAY_UPSTREAM_CALLS = frozenset({("/v1/organizations/{org_id}/api-keys", "post")})
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Retrying with the same key and body replays the first answer (header "
        "`Idempotent-Replayed: true`); the same key with another body is a 422, and a 409 "
        "while the first request still runs. Keys live 24 hours per organization."
    ),
    # What services/gateway/idempotency.py accepts: 1-255 visible ASCII characters.
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": "^[!-~]([ -~]*[!-~])?$",
    },
}
API_DESCRIPTION = """The public REST API of Mentorbus: HRIS sync (REST and SCIM 2.0),
programs and enrollments, matching, sessions, feedback.

Errors are RFC 9457 `application/problem+json` (`type`, `title`, `status`, `detail`; a 422
adds `errors: [{field, message}]`). Lists answer `{"items": [...], "next_cursor": ...}`:
pass `next_cursor` back as `cursor` for the next page (null: the last page).

Consistency: an id that any 2xx answer returned can be used at once on every path; a
service that has not yet seen it waits for it (a few seconds at most) instead of
answering 404. An id that never existed is still a 404."""


def _public_paths(service: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The paths of a service's spec that the gateway routes to that service."""
    return {
        path: item
        for path, item in spec.get("paths", {}).items()
        if (route := resolve_route(path)) is not None and route.service == service
    }


def _rename_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.removeprefix(REF_PREFIX) in renames:
            return {**node, "$ref": REF_PREFIX + renames[ref.removeprefix(REF_PREFIX)]}
        return {k: _rename_refs(v, renames) for k, v in node.items()}
    if isinstance(node, list):
        return [_rename_refs(v, renames) for v in node]
    return node


def merge_openapi(gateway: dict[str, Any], services: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The gateway's spec with every service's public paths and their schemas added.

    Two services may name different schemas alike (e.g. `Page_..._`); the later one is then
    renamed `<service>__<name>` in its own paths, so no reference points at the wrong shape.
    """
    merged = copy.deepcopy(gateway)
    merged.setdefault("paths", {})
    schemas: dict[str, Any] = merged.setdefault("components", {}).setdefault("schemas", {})
    for service, spec in sorted(services.items()):
        renames: dict[str, str] = {}
        own = spec.get("components", {}).get("schemas", {})
        for name, schema in own.items():
            if name in schemas and json.dumps(schemas[name], sort_keys=True) != json.dumps(
                schema, sort_keys=True
            ):
                renames[name] = f"{service}__{name}"
        for name, schema in own.items():
            schemas[renames.get(name, name)] = _rename_refs(schema, renames)
        for path, item in _public_paths(service, spec).items():
            merged["paths"][path] = _rename_refs(item, renames)
        known_tags = {t["name"] for t in merged.get("tags", [])}
        for tag in spec.get("tags", []):
            if tag["name"] not in known_tags:
                merged.setdefault("tags", []).append(tag)
    document_gateway(merged)
    return merged


def document_gateway(spec: dict[str, Any]) -> None:
    """What the gateway adds to every operation: who may call it (security), the answers
    only the gateway gives (401 without valid credentials, 413 for an oversized body, 429
    over the rate limit, 502/503/504 when the owning service fails), `Idempotency-Key`
    on POSTs, and the document's servers, security schemes and description."""
    spec["info"]["description"] = API_DESCRIPTION
    spec["components"]["securitySchemes"] = SECURITY_SCHEMES
    spec["security"] = AUTHENTICATED
    for path, method, op in operations(spec):
        route = resolve_route(path)
        if path in OPERATIONS_PATHS or (route is not None and route.public):
            op["security"] = []
            statuses = [502, 503, 504] if route is not None else []
        else:
            statuses = [401, 403, 429]
            if route is not None or (path, method) in GATEWAY_UPSTREAM_CALLS:
                statuses += [502, 503, 504]
        if "requestBody" in op:
            statuses.append(413)
        if any(p.get("in") == "path" for p in op.get("parameters", [])):
            # An id with a dot segment, an encoded slash or a backslash (pathsafety.py).
            statuses.append(400)
        if method == "post":
            params = op.setdefault("parameters", [])
            if not any(p.get("name", "").lower() == "idempotency-key" for p in params):
                params.append(IDEMPOTENCY_KEY)
            statuses += [409, 422]
        if path.startswith("/scim/"):
            _add_scim_errors(op, sorted(set(statuses)))
        else:
            add_problems(op, sorted(set(statuses)))


def _add_scim_errors(op: dict[str, Any], statuses: list[int]) -> None:
    """The gateway answers on SCIM paths in SCIM's error schema (see scim_errors.py)."""
    responses = op.setdefault("responses", {})
    for status in statuses:
        responses.setdefault(
            str(status),
            {
                "description": problem_response(status)["description"],
                "content": {SCIM_JSON: {"schema": {"$ref": "#/components/schemas/ScimError"}}},
            },
        )
