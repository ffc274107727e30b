"""What every part of the SCIM door shares: names, the per-request context, small helpers."""

import contextvars
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic_core import to_json
from scim2_models import (
    InvalidValueException,
    Meta,
    Resource,
)
from sqlalchemy import (
    ColumnElement,
    and_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.profiles.models import Person

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
MAX_RESULTS = 200
# Bounds that keep one tenant's SCIM traffic from stalling everyone's (issue 22): a request
# body (advertised as maxPayloadSize), the stored representation of one resource, the
# values of one multi-valued attribute, and how far a search may page.
MAX_PAYLOAD = 1_048_576
MAX_STORED_DOCUMENT = 262_144
MAX_VALUES = 100
MAX_START_INDEX = 1_000_000


@dataclass(frozen=True)
class RequestContext:
    """What the storage needs of the request it serves."""

    session: AsyncSession
    org_id: uuid.UUID
    base_url: str


CONTEXT: contextvars.ContextVar[RequestContext] = contextvars.ContextVar("scim_context")


def current() -> RequestContext:
    """The request being served (its session, organization and base URL)."""
    return CONTEXT.get()


def version_of(doc: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
    return f'W/"{digest[:20]}"'


def as_uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def set_value(doc: dict[str, Any], key: str, value: Any) -> None:
    if value is None or value == [] or value == {}:
        doc.pop(key, None)
    else:
        doc[key] = value


def primary_email(doc: dict[str, Any]) -> dict[str, Any] | None:
    emails = doc.get("emails") or []
    return next((e for e in emails if e.get("primary")), emails[0] if emails else None)


def invalid(message: str) -> InvalidValueException:
    return InvalidValueException(detail=message)


def resource_of(
    model: type[Resource[Any]], kind: str, doc: dict[str, Any], created: Any, modified: Any
) -> Resource[Any]:
    resource = model.model_validate(doc)
    resource.meta = Meta(
        resource_type=kind, created=created, last_modified=modified, version=version_of(doc)
    )
    return resource


def provisioned(org_id: uuid.UUID) -> ColumnElement[bool]:
    return and_(Person.org_id == org_id, Person.scim_deleted_at.is_(None))


def stored_document(resource: Resource[Any]) -> dict[str, Any]:
    doc: dict[str, Any] = resource.model_dump()
    for key in ("id", "meta", "groups", "schemas"):
        doc.pop(key, None)
    return doc


def check_size(doc: dict[str, Any], *, unbounded: tuple[str, ...] = ()) -> None:
    """Refuse a representation too large to keep: a multi-valued attribute with more than
    MAX_VALUES values (at the top level or in an extension), or a whole document over
    MAX_STORED_DOCUMENT bytes. `unbounded` names lists bounded elsewhere (group members)."""
    for scope in (doc, *(v for v in doc.values() if isinstance(v, dict))):
        for key, value in scope.items():
            if isinstance(value, list) and len(value) > MAX_VALUES and key not in unbounded:
                raise invalid(f"{key} has {len(value)} values; at most {MAX_VALUES} are kept")
    size = len(to_json(doc))
    if size > MAX_STORED_DOCUMENT:
        raise invalid(
            f"the resource is {size} bytes as JSON; at most {MAX_STORED_DOCUMENT} are kept"
        )
