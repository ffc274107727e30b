"""One OpenAPI document for the whole public API: the gateway's own operations plus each
service's public paths, merged. Pure functions: no HTTP here."""

import copy
import json
from typing import Any

from services.gateway.domain import resolve_route

REF_PREFIX = "#/components/schemas/"


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
    merged["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "API key or admin token"}
    }
    merged["security"] = [{"bearer": []}]
    return merged
