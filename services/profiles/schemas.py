"""Profiles wire models (snake_case JSON, field names fixed by the public contract)."""

import json
import re
import uuid
import zoneinfo
from datetime import date, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, field_validator

EmploymentStatus = Literal["active", "inactive", "leave"]

MAX_ATTRIBUTES_BYTES = 16 * 1024
MAX_ATTRIBUTES_KEYS = 100
_BCP47 = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _check_time_zone(value: str) -> str:
    if value not in _time_zones():
        raise ValueError(f"unknown IANA time zone {value!r}")
    return value


def _check_language(value: str) -> str:
    if not _BCP47.match(value):
        raise ValueError(f"not a BCP 47 language tag: {value!r}")
    return value


TimeZone = Annotated[str, AfterValidator(_check_time_zone)]
LanguageTag = Annotated[str, AfterValidator(_check_language)]
ExternalId = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^/\s][^/]*$")]


class OrganizationIn(BaseModel):
    """`POST /v1/organizations` body."""

    name: str = Field(min_length=1, max_length=200)


class OrganizationOut(BaseModel):
    """An organization."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    created_at: datetime


class EmployeeIn(BaseModel):
    """An employee record as an HRIS sends it (`PUT /v1/employees/{external_id}`)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    external_id: ExternalId | None = None
    email: EmailStr | None = None
    given_name: str | None = Field(default=None, max_length=200)
    family_name: str | None = Field(default=None, max_length=200)
    display_name: str | None = Field(default=None, max_length=400)
    title: str | None = Field(default=None, max_length=200)
    department: str | None = Field(default=None, max_length=200)
    division: str | None = Field(default=None, max_length=200)
    cost_center: str | None = Field(default=None, max_length=100)
    location: str | None = Field(default=None, max_length=200)
    time_zone: TimeZone | None = None
    languages: list[LanguageTag] = Field(default_factory=list, max_length=20)
    manager_external_id: ExternalId | None = None
    hire_date: date | None = None
    employment_status: EmploymentStatus = "active"
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("attributes")
    @classmethod
    def _bounded_attributes(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_ATTRIBUTES_KEYS:
            raise ValueError(f"at most {MAX_ATTRIBUTES_KEYS} attributes")
        if len(json.dumps(value, default=str).encode()) > MAX_ATTRIBUTES_BYTES:
            raise ValueError(f"attributes exceed {MAX_ATTRIBUTES_BYTES} bytes of JSON")
        return value


class EmployeeOut(BaseModel):
    """An employee as stored."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    external_id: str
    email: str | None
    given_name: str | None
    family_name: str | None
    display_name: str | None
    title: str | None
    department: str | None
    division: str | None
    cost_center: str | None
    location: str | None
    time_zone: str | None
    languages: list[str]
    manager_external_id: str | None
    hire_date: date | None
    employment_status: EmploymentStatus
    attributes: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime
