"""What identity providers send that RFC 7644 reads otherwise, made standard before
scim2-server validates it (each choice is documented in services/profiles/README.md).

Lenient where the meaning is unambiguous and Microsoft Entra ID or Okta send it:
- PATCH bodies with keys beside `schemas` and `Operations` (an `id`, ...): ignored.
- `op` in any case (`Replace`, `Add`): scim2-models already accepts it.
- Booleans as strings (`"active": "False"`, `"primary": "true"`): real booleans.
  Any other string stays a string, and validation refuses it (strict: guessing would
  flip someone's access).
- The enterprise `manager` as a bare id string (Entra's PATCH): `{"value": id}`.
- `remove` on `members` with a value list (Entra's group PATCH): removes those members
  only. RFC 7644 §3.5.2.2 would remove *every* member for a remove without a filter,
  which would silently drop the rest of the group.
Pure functions on decoded JSON: no I/O, callable off the event loop.
"""

from typing import Any

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
_BOOLEANS = frozenset({"active", "primary"})
_TRUTH = {"true": True, "false": False}


def _boolean(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in _TRUTH:
        return _TRUTH[value.strip().lower()]
    return value


def booleans(value: Any) -> Any:
    """`value` with string booleans of boolean attributes made real, at any depth."""
    if isinstance(value, list):
        return [booleans(v) for v in value]
    if isinstance(value, dict):
        return {k: _boolean(v) if k.lower() in _BOOLEANS else booleans(v) for k, v in value.items()}
    return value


def _last_attribute(path: str) -> str:
    """The attribute a path ends on: `emails[type eq "work"].primary` -> `primary`."""
    tail = path.rsplit("]", 1)[-1].lstrip(".") or path.split("[", 1)[0]
    return tail.rsplit(":", 1)[-1].rsplit(".", 1)[-1].lower()


def _operation(op: Any) -> list[Any]:
    if not isinstance(op, dict):
        return [op]
    op = dict(op)
    path = op.get("path")
    kind = str(op.get("op", "")).lower()
    if isinstance(path, str) and "value" in op:
        attribute = _last_attribute(path)
        if attribute in _BOOLEANS:
            op["value"] = _boolean(op["value"])
        elif attribute == "manager" and isinstance(op["value"], str):
            op["value"] = {"value": op["value"]}
        else:
            op["value"] = booleans(op["value"])
    elif "value" in op:
        op["value"] = booleans(op["value"])
    if (
        kind == "remove"
        and isinstance(path, str)
        and path.strip().lower() == "members"
        and isinstance(op.get("value"), list)
    ):
        ids = [m.get("value") for m in op["value"] if isinstance(m, dict)]
        if all(isinstance(i, str) and '"' not in i for i in ids):
            return [{"op": "remove", "path": f'members[value eq "{i}"]'} for i in ids]
    return [op]


def normalize_patch(body: Any) -> Any:
    """A PatchOp body as RFC 7644 reads it (see the module notes)."""
    if not isinstance(body, dict):
        return body
    operations = next((v for k, v in body.items() if k.lower() == "operations"), None)
    schemas = next((v for k, v in body.items() if k.lower() == "schemas"), [PATCH_OP])
    if not isinstance(operations, list):
        return body
    return {
        "schemas": schemas,
        "Operations": [o for op in operations for o in _operation(op)],
    }


def normalize_resource(body: Any) -> Any:
    """A User or Group body (POST, PUT) with string booleans made real."""
    return booleans(body)
