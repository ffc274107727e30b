"""The SCIM 2.0 endpoints in the OpenAPI document. scim2-server serves them outside FastAPI's
routing, so FastAPI cannot see them; this describes what it serves (RFC 7643/7644): the
`application/scim+json` media type and the SCIM error schema (never problem+json, except
for what the gateway answers before SCIM is reached)."""

from typing import Any

SCIM_JSON = "application/scim+json"
PROBLEM_JSON = "application/problem+json"
REF = "#/components/schemas/"
TAG = "scim"
# SCIM reads a null attribute as unassigned (RFC 7644 section 3.5.1), so optional
# attributes are nullable.
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

SCHEMAS: dict[str, Any] = {
    "ScimError": {
        "type": "object",
        "description": "A SCIM error (RFC 7644 section 3.12).",
        "properties": {
            "schemas": {"type": "array", "items": {"type": "string"}},
            "status": {"type": "string", "description": "The HTTP status, as a string"},
            "scimType": {"type": "string"},
            "detail": {"type": "string"},
        },
        "required": ["schemas", "status"],
    },
    "ScimResource": {
        "type": "object",
        "description": (
            "A SCIM resource: a User, a Group, or a discovery document (a Schema, a "
            "ResourceType, the ServiceProviderConfig), per its `schemas`."
        ),
        "properties": {"schemas": {"type": "array", "items": {"type": "string"}}},
        "additionalProperties": True,
    },
    "ScimUser": {
        "type": "object",
        "description": (
            "A User: RFC 7643's core schema with the enterprise extension (an employee)."
        ),
        "properties": {
            "schemas": {"type": "array", "items": {"type": "string"}},
            "id": {"type": "string", "readOnly": True},
            "externalId": {"type": ["string", "null"]},
            "userName": {"type": "string", "description": "Unique per organization"},
            "displayName": {"type": ["string", "null"]},
            "active": {
                "type": ["boolean", "integer", "string", "null"],
                "description": "A boolean; 0/1 and `\"true\"`/`\"false\"` are read as one too",
            },
            "meta": {"type": "object", "readOnly": True, "additionalProperties": True},
        },
        "required": ["userName"],
        "additionalProperties": True,
        "example": {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ada@acme.com",
            "externalId": "E-1",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": "ada@acme.com", "primary": True}],
            "timezone": "Europe/London",
            "active": True,
        },
    },
    "ScimGroup": {
        "type": "object",
        "description": "A Group of Users.",
        "properties": {
            "schemas": {"type": "array", "items": {"type": "string"}},
            "id": {"type": "string", "readOnly": True},
            "externalId": {"type": ["string", "null"]},
            "displayName": {"type": ["string", "null"]},
            "members": {
                "type": ["array", "null"],
                "items": {
                    "type": "object",
                    # Members that are not (yet) users or groups of the organization are kept
                    # as written but are not members; see the SCIM section of the README.
                    "properties": {
                        "value": {"type": ["string", "null"]},
                        "display": {"type": ["string", "null"]},
                        "type": {"type": ["string", "null"]},
                        "$ref": {"type": ["string", "null"]},
                    },
                },
            },
            "meta": {"type": "object", "readOnly": True, "additionalProperties": True},
        },
        "required": ["displayName"],
        "additionalProperties": False,
        "example": {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Engineering",
            "members": [],
        },
    },
    "ScimListResponse": {
        "type": "object",
        "description": "A page of SCIM resources (RFC 7644 section 3.4.2).",
        "properties": {
            "schemas": {"type": "array", "items": {"type": "string"}},
            "totalResults": {"type": "integer", "minimum": 0},
            "startIndex": {"type": "integer", "minimum": 1},
            "itemsPerPage": {"type": "integer", "minimum": 0},
            "Resources": {"type": "array", "items": {"$ref": f"{REF}ScimResource"}},
        },
        "required": ["schemas", "totalResults"],
    },
    "ScimPatchOp": {
        "type": "object",
        "description": "A SCIM PATCH request (RFC 7644 section 3.5.2).",
        "properties": {
            "schemas": {
                "type": "array",
                "items": {"type": "string", "enum": [PATCH_OP]},
            },
            "Operations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "op": {"type": "string", "enum": ["add", "remove", "replace"]},
                        "path": {"type": "string"},
                        "value": {},
                    },
                    "required": ["op"],
                },
            },
        },
        "required": ["schemas", "Operations"],
    },
}  # fmt: skip

ERROR_TEXT = {
    400: "Invalid request: bad filter, bad value, or missing attribute",
    404: "No such resource in the caller's organization",
    405: "This endpoint does not support the method",
    409: "A unique attribute (userName, externalId) is taken",
    412: "An `If-Match` precondition did not hold",
    415: "The body is not `application/scim+json`",
}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {SCIM_JSON: {"schema": {"$ref": REF + schema}}}}


def _errors(*statuses: int) -> dict[str, Any]:
    errors = {str(s): _json("ScimError", ERROR_TEXT[s]) for s in statuses}
    if "404" in errors:
        # A path SCIM's router never sees (e.g. an id with a line break) is refused before
        # it, in problem+json like every non-SCIM path.
        errors["404"]["content"][PROBLEM_JSON] = {"schema": {"$ref": REF + "Problem"}}
    return errors


def _op(summary: str, op_id: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    # A member's token (not organization-wide) is refused by SCIM itself; a key without
    # the scope by the gateway, in problem+json.
    forbidden = _json("ScimError", "The credentials do not allow provisioning")
    forbidden["content"][PROBLEM_JSON] = {"schema": {"$ref": REF + "Problem"}}
    responses = {**responses, "403": forbidden}
    return {
        "tags": [TAG],
        "summary": summary,
        "operationId": op_id,
        "x-protocol": "scim",
        "responses": responses,
        **extra,
    }


def _id_param() -> dict[str, Any]:
    return {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


def _if_match() -> dict[str, Any]:
    return {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"}}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {SCIM_JSON: {"schema": {"$ref": REF + schema}}}}


LIST_PARAMS = [
    {"name": "filter", "in": "query", "required": False, "schema": {"type": "string"},
     "description": 'A SCIM filter, e.g. `userName eq "ada@acme.com"`'},
    {"name": "startIndex", "in": "query", "required": False, "schema": {"type": "integer"},
     "description": "1-based; a value under 1 is read as 1 (RFC 7644 section 3.4.2.4)"},
    {"name": "count", "in": "query", "required": False, "schema": {"type": "integer"},
     "description": "Page size; a negative value is read as 0"},
]  # fmt: skip


def _resource_paths(endpoint: str, noun: str) -> dict[str, Any]:
    lower = noun.lower()
    model = f"Scim{noun}"
    return {
        f"/scim/v2/{endpoint}": {
            "get": _op(
                f"List or filter {endpoint}",
                f"scim_list_{lower}s",
                {"200": _json("ScimListResponse", f"The {endpoint}"), **_errors(400)},
                parameters=LIST_PARAMS,
            ),
            "post": _op(
                f"Provision a {noun}",
                f"scim_create_{lower}",
                {"201": _json(model, f"The new {noun}"), **_errors(400, 409, 415)},
                requestBody=_body(model),
            ),
        },
        f"/scim/v2/{endpoint}/{{id}}": {
            "get": _op(
                f"One {noun}",
                f"scim_get_{lower}",
                {"200": _json(model, f"The {noun}"), **_errors(400, 404)},
                parameters=[_id_param()],
            ),
            "put": _op(
                f"Replace a {noun}",
                f"scim_replace_{lower}",
                {"200": _json(model, f"The {noun}"), **_errors(400, 404, 409, 412, 415)},
                parameters=[_id_param(), _if_match()],
                requestBody=_body(model),
            ),
            "patch": _op(
                f"Change a {noun}",
                f"scim_patch_{lower}",
                {
                    "200": _json(model, f"The {noun}"),
                    "204": {"description": "Changed"},
                    **_errors(400, 404, 409, 412, 415),
                },
                parameters=[_id_param(), _if_match()],
                requestBody=_body("ScimPatchOp"),
            ),
            "delete": _op(
                f"Deprovision a {noun}",
                f"scim_delete_{lower}",
                {"204": {"description": "Deprovisioned"}, **_errors(404, 412)},
                parameters=[_id_param(), _if_match()],
            ),
        },
    }


def _discovery_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/scim/v2/ServiceProviderConfig": {
            "get": _op(
                "What this SCIM service supports",
                "scim_service_provider_config",
                {"200": _json("ScimResource", "The service provider configuration")},
            )
        }
    }
    for endpoint in ("Schemas", "ResourceTypes"):
        lower = endpoint.lower()
        paths[f"/scim/v2/{endpoint}"] = {
            "get": _op(
                f"The {endpoint}",
                f"scim_list_{lower}",
                {"200": _json("ScimListResponse", f"The {endpoint}"), **_errors(400)},
            )
        }
        paths[f"/scim/v2/{endpoint}/{{id}}"] = {
            "get": _op(
                f"One of the {endpoint}",
                f"scim_get_{lower}",
                {"200": _json("ScimResource", "It"), **_errors(404)},
                parameters=[_id_param()],
            )
        }
    return paths


def extend(spec: dict[str, Any]) -> None:
    """Add the SCIM endpoints and their schemas to a FastAPI-generated spec."""
    spec.setdefault("components", {}).setdefault("schemas", {}).update(SCHEMAS)
    paths = spec.setdefault("paths", {})
    paths.update(_resource_paths("Users", "User"))
    paths.update(_resource_paths("Groups", "Group"))
    paths.update(_discovery_paths())
    spec.setdefault("tags", []).append(
        {"name": TAG, "description": "SCIM 2.0 provisioning (RFC 7643/7644)"}
    )
