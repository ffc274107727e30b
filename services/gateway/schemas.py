"""Gateway wire models."""

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ApiKeyIn(BaseModel):
    """`POST /v1/organizations/{id}/api-keys` body. `scopes` omitted means every scope
    (the key reads `["*"]`); otherwise name each (`employees`, `programs:read`, `keys`, ...
    or `"*"`): an empty list grants nothing and is refused."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(default_factory=lambda: ["*"], min_length=1, max_length=50)


class ApiKeyOut(BaseModel):
    """An API key without its secret."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    """A new API key: `key` is shown only in this response."""

    key: str
