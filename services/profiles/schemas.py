"""Profiles wire models (snake_case JSON, field names fixed by the public contract)."""

import re
import uuid
import zoneinfo
from datetime import date, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    PlainValidator,
    StrictBool,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema, WithJsonSchema
from pydantic_core import to_json

EmploymentStatus = Literal["active", "inactive", "leave"]

# Custom HRIS fields fit easily; 1,000 records at this cap still fit the bulk body limit.
MAX_ATTRIBUTES_BYTES = 8 * 1024
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


_EMAIL_ADAPTER: TypeAdapter[str] = TypeAdapter(EmailStr)
# Addresses plain enough that email-validator's verdict is known: ASCII dot-atoms, domain
# labels of letters, digits and single hyphens, an alphabetic TLD. Anything else goes
# through email-validator (EmailStr), which costs ~40 µs an address: most of a bulk sync.
_PLAIN_EMAIL = re.compile(
    r"^(?P<local>[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*)"
    r"@(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})$"
)
_SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")


def _check_email(value: str) -> str:
    plain = _PLAIN_EMAIL.match(value)
    if plain and len(value) <= 254 and len(plain["local"]) <= 64:
        domain = plain["domain"].lower()
        if "--" not in domain and domain.rsplit(".", 1)[-1] not in _SPECIAL_USE_DOMAINS:
            # email-validator's normalization: the domain lowercased, the local part kept.
            return f"{plain['local']}@{domain}"
    try:
        return _EMAIL_ADAPTER.validate_python(value)
    except ValidationError as exc:
        raise ValueError(exc.errors()[0]["msg"]) from None


Email = Annotated[str, PlainValidator(_check_email, json_schema_input_type=str)]
TimeZone = Annotated[str, AfterValidator(_check_time_zone)]
LanguageTag = Annotated[str, AfterValidator(_check_language)]
ExternalId = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^/\s][^/]*$")]


def _iso_date_only(value: Any) -> Any:
    # pydantic would read a number as a Unix timestamp; the API's dates are ISO 8601 text.
    if isinstance(value, int | float):
        raise ValueError("expected an ISO 8601 date such as 2026-01-31")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]


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
    email: Email | None = None
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
    hire_date: IsoDate | None = None
    employment_status: EmploymentStatus = "active"
    attributes: dict[str, Any] = Field(default_factory=dict)
    job_level: int | None = Field(default=None, ge=0, le=1000)
    effective_date: date | None = Field(
        default=None,
        description="When this state took effect in the HRIS (default today). A state older "
        "than the current one joins the employee's history without replacing it.",
    )

    @field_validator("attributes")
    @classmethod
    def _bounded_attributes(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_ATTRIBUTES_KEYS:
            raise ValueError(f"at most {MAX_ATTRIBUTES_KEYS} attributes")
        if len(to_json(value, fallback=str)) > MAX_ATTRIBUTES_BYTES:
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
    job_level: int | None
    effective_date: date
    version: int
    created_at: datetime
    updated_at: datetime


# --- bulk sync -------------------------------------------------------------------------

MAX_BULK_RECORDS = 1000
BulkOutcome = Literal["created", "updated", "unchanged", "error"]


class BulkRecordIn(EmployeeIn):
    """One record of a bulk sync: like a PUT body, with the external id inside."""

    external_id: ExternalId


class BulkIn(BaseModel):
    """`POST /v1/employees/bulk` body. Records are validated one by one (a bad record is an
    `error` result, not a failed batch), so here they are only JSON objects."""

    employees: list[Any] = Field(max_length=MAX_BULK_RECORDS)


class ValidBulkIn(BaseModel):
    """The same body when every record is valid: the fast path, validated in one call."""

    employees: list[BulkRecordIn] = Field(max_length=MAX_BULK_RECORDS)


class FieldErrorOut(BaseModel):
    """One bad field of a record."""

    field: str
    message: str


class BulkResultOut(BaseModel):
    """What happened to one record of a bulk sync."""

    external_id: str | None
    status: BulkOutcome
    errors: list[FieldErrorOut] = Field(default_factory=list)
    version: int | None = None


class BulkOut(BaseModel):
    """Per-record results, in the order of the request."""

    results: list[BulkResultOut]


# --- programs --------------------------------------------------------------------------

ProgramFormat = Literal["one_to_one", "group", "reverse", "peer", "flash"]
ProgramStatus = Literal["draft", "open", "active", "closed"]
DepartmentRule = Literal["same", "different", "any"]
MAX_PREFERENCES_BYTES = 8 * 1024


class CriteriaWeights(BaseModel):
    """Relative weight of each matching criterion (0 ignores it; they need not sum to 1)."""

    model_config = ConfigDict(extra="forbid")

    skills: float = Field(default=0.35, ge=0, le=100)
    goals: float = Field(default=0.2, ge=0, le=100)
    department: float = Field(default=0.1, ge=0, le=100)
    seniority: float = Field(default=0.1, ge=0, le=100)
    languages: float = Field(default=0.1, ge=0, le=100)
    time_zone: float = Field(default=0.1, ge=0, le=100)
    attributes: float = Field(default=0.05, ge=0, le=100)
    preferences: float = Field(
        default=0.1,
        ge=0,
        le=100,
        description="The share of a mentee's stated `preferences` the mentor meets; scored "
        "only for mentees who state preferences",
    )


class SeniorityGap(BaseModel):
    """How much longer (in years since hire) a mentor should have served than a mentee."""

    model_config = ConfigDict(extra="forbid")

    # Negative: the mentor is the junior one (reverse mentoring).
    min_years: float | None = Field(default=None, ge=-60, le=60)
    max_years: float | None = Field(default=None, ge=-60, le=60)

    @model_validator(mode="after")
    def _ordered(self) -> "SeniorityGap":
        if (
            self.min_years is not None
            and self.max_years is not None
            and self.max_years < self.min_years
        ):
            raise ValueError("max_years must not be less than min_years")
        return self


class AttributeRule(BaseModel):
    """A rule on a custom employee attribute (`attributes.<name>`) or an intake answer
    (`answers.<key>`): mentor and mentee must have the `same` or a `different` value, or
    (multi-choice answers) `overlap` in at least one choice; `weight` scales its share."""

    model_config = ConfigDict(extra="forbid")

    attribute: str = Field(min_length=1, max_length=100)
    rule: Literal["same", "different", "overlap"]
    weight: float = Field(default=1.0, ge=0, le=100)


class Criteria(BaseModel):
    """Matching criteria of a program: weights and rules the matching service scores by."""

    model_config = ConfigDict(extra="forbid")

    weights: CriteriaWeights = Field(default_factory=CriteriaWeights)
    department_rule: DepartmentRule = "any"
    seniority_gap: SeniorityGap = Field(default_factory=SeniorityGap)
    require_shared_language: StrictBool = False
    max_time_zone_difference_hours: float | None = Field(default=None, ge=0, le=26)
    attribute_rules: list[AttributeRule] = Field(default_factory=list, max_length=20)
    prefer_previous_mentor: float = Field(
        default=0, ge=0, le=100, description="Weight favouring a mentor the mentee had before"
    )


QuestionType = Literal["single_choice", "multi_choice", "scale", "text"]


class Question(BaseModel):
    """An intake question a program asks; enrollments answer it in `answers.<key>`.
    Choice questions list their `options`; a `scale` is answered with 1-5."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    key: str = Field(min_length=1, max_length=50, pattern=r"^[a-z][a-z0-9_]*$")
    prompt: str = Field(min_length=1, max_length=500)
    type: QuestionType
    options: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=50
    )
    required: bool = False

    @model_validator(mode="after")
    def _options_fit_type(self) -> "Question":
        choice = self.type in ("single_choice", "multi_choice")
        if choice and len(self.options) < 2:
            raise ValueError("a choice question needs at least two options")
        if not choice and self.options:
            raise ValueError(f"a {self.type} question has no options")
        if len(set(self.options)) != len(self.options):
            raise ValueError("options must be distinct")
        return self


def _unique_keys(questions: list[Question] | None) -> list[Question] | None:
    if questions is not None and len({q.key for q in questions}) != len(questions):
        raise ValueError("question keys must be distinct")
    return questions


Questions = Annotated[list[Question], Field(max_length=30), AfterValidator(_unique_keys)]


class ProgramIn(BaseModel):
    """`POST /v1/programs` body."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    format: ProgramFormat = "one_to_one"
    status: ProgramStatus = "draft"
    starts_on: IsoDate | None = None
    ends_on: IsoDate | None = None
    max_mentees_per_mentor: int = Field(default=1, ge=1, le=100)
    criteria: Criteria = Field(default_factory=Criteria)
    questions: Questions = Field(default_factory=list)

    @model_validator(mode="after")
    def _dates_in_order(self) -> "ProgramIn":
        if self.starts_on and self.ends_on and self.ends_on < self.starts_on:
            raise ValueError("ends_on must not be before starts_on")
        return self


class ProgramPatch(BaseModel):
    """`PATCH /v1/programs/{id}` body: only the fields sent change."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[str, Field(min_length=1, max_length=200)] | SkipJsonSchema[None] = None
    description: str | None = Field(default=None, max_length=5000)
    format: ProgramFormat | SkipJsonSchema[None] = None
    status: ProgramStatus | SkipJsonSchema[None] = None
    starts_on: IsoDate | None = None
    ends_on: IsoDate | None = None
    max_mentees_per_mentor: Annotated[int, Field(ge=1, le=100)] | SkipJsonSchema[None] = None
    criteria: Criteria | SkipJsonSchema[None] = None
    questions: Questions | SkipJsonSchema[None] = None


class ProgramOut(BaseModel):
    """A program as stored."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str | None
    format: ProgramFormat
    status: ProgramStatus
    starts_on: date | None
    ends_on: date | None
    max_mentees_per_mentor: int
    criteria: dict[str, Any]
    questions: list[dict[str, Any]] = Field(default_factory=list)
    version: int
    created_at: datetime
    updated_at: datetime


# --- enrollments -----------------------------------------------------------------------

EnrollmentRole = Literal["mentor", "mentee", "both"]
EnrollmentStatus = Literal["active", "withdrawn"]


class SkillIn(BaseModel):
    """A skill and its level, 1 (beginner) to 5 (expert)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=100)
    level: int = Field(ge=1, le=5)


def _unique_skills(skills: list[SkillIn] | None) -> list[SkillIn] | None:
    if skills is not None:
        names = [s.name.casefold() for s in skills]
        if len(set(names)) != len(names):
            raise ValueError("each skill may appear once")
    return skills


def _bounded_preferences(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and len(to_json(value, fallback=str)) > MAX_PREFERENCES_BYTES:
        raise ValueError(f"preferences exceed {MAX_PREFERENCES_BYTES} bytes of JSON")
    return value


Skills = Annotated[list[SkillIn], Field(max_length=50), AfterValidator(_unique_skills)]
Goals = Annotated[list[Annotated[str, Field(min_length=1, max_length=500)]], Field(max_length=20)]


_SCALAR: dict[str, Any] = {"anyOf": [{"type": t} for t in ("string", "number", "boolean")]}
# One error naming `preferences.<key>` rather than one per member of a union.
_PREFERENCE: dict[str, Any] = {"anyOf": [*_SCALAR["anyOf"], {"type": "array", "items": _SCALAR}]}


def _preference_value(value: Any) -> Any:
    def scalar(v: Any) -> bool:
        return isinstance(v, str | int | float | bool) and v is not None

    if not (scalar(value) or (isinstance(value, list) and all(scalar(v) for v in value))):
        raise ValueError("must be a string, number or boolean, or a list of them")
    return value


Preferences = Annotated[
    dict[str, Annotated[Any, AfterValidator(_preference_value), WithJsonSchema(_PREFERENCE)]],
    AfterValidator(_bounded_preferences),
    Field(
        description="Mentor properties the mentee wants, scored by matching's `preferences` "
        'criterion: e.g. `{"department": "Engineering", "location": ["Berlin", "Remote"], '
        '"languages": ["de"]}`. Each key a mentor property (`department`, `division`, '
        "`title`, `location`, `languages`, or `attributes.<name>`), each value one wanted "
        "value or a list of acceptable ones; other keys are kept but not scored."
    ),
]
# Checked against the program's questions by the use case (422 naming `answers.<key>`).
Answers = Annotated[dict[str, Any], AfterValidator(_bounded_preferences)]


class EnrollmentIn(BaseModel):
    """`POST /v1/programs/{id}/enrollments` body."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    employee_external_id: ExternalId
    role: EnrollmentRole
    skills: Skills = Field(default_factory=list)
    goals: Goals = Field(default_factory=list)
    languages: list[LanguageTag] = Field(default_factory=list, max_length=20)
    capacity: int | None = Field(default=None, ge=0, le=100)
    preferences: Preferences = Field(default_factory=dict)
    bio: str | None = Field(default=None, max_length=5000)
    answers: Answers = Field(default_factory=dict, description="Answers to the program's questions")


class EnrollmentPatch(BaseModel):
    """`PATCH /v1/programs/{id}/enrollments/{enrollment_id}` body."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    role: EnrollmentRole | SkipJsonSchema[None] = None
    skills: Skills | SkipJsonSchema[None] = None
    goals: Goals | SkipJsonSchema[None] = None
    languages: Annotated[list[LanguageTag], Field(max_length=20)] | SkipJsonSchema[None] = None
    capacity: int | None = Field(default=None, ge=0, le=100)
    preferences: Preferences | SkipJsonSchema[None] = None
    bio: str | None = Field(default=None, max_length=5000)
    answers: Answers | SkipJsonSchema[None] = None
    status: EnrollmentStatus | SkipJsonSchema[None] = None


class EnrollmentOut(BaseModel):
    """An enrollment as stored."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    program_id: uuid.UUID
    person_id: uuid.UUID
    employee_external_id: str
    role: EnrollmentRole
    skills: list[dict[str, Any]]
    goals: list[str]
    languages: list[str]
    capacity: int | None
    preferences: dict[str, Any]
    bio: str | None
    answers: dict[str, Any] = Field(default_factory=dict)
    status: EnrollmentStatus
    version: int
    created_at: datetime
    updated_at: datetime
