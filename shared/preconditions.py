"""Optimistic concurrency: record versions are the ETags, `If-Match` is a Precondition
the domain checks (domain code sees only `Precondition`, never the header)."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Header

from shared.errors import FieldError, InvalidInput, PreconditionFailed

# The pattern documents (and FastAPI checks) what `parse_if_match` accepts.
IF_MATCH_PATTERN = r'^\s*(\*|(W/)?"?[0-9]+"?)\s*$'
IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description='`"<version>"` or `*`', pattern=IF_MATCH_PATTERN),
]


def etag(version: int) -> str:
    """The strong entity tag of a record version."""
    return f'"{version}"'


@dataclass(frozen=True)
class Precondition:
    """An `If-Match`: a version the stored record must have, or `any_version` (`*`)."""

    version: int | None = None
    any_version: bool = False

    def check(self, current: int | None, what: str) -> None:
        """Raise PreconditionFailed unless the record exists (`current` is its version) at
        the expected version."""
        if current is None:
            raise PreconditionFailed(f"{what} does not exist")
        if not self.any_version and self.version != current:
            raise PreconditionFailed(f"{what} is at version {current}, not {self.version}")


def check(precondition: Precondition | None, current: int | None, what: str) -> None:
    """Check an optional precondition."""
    if precondition is not None:
        precondition.check(current, what)


def parse_if_match(value: str | None) -> Precondition | None:
    """`If-Match: "3"` or `*`; anything else is a 422 naming the header."""
    if value is None:
        return None
    value = value.strip()
    if value == "*":
        return Precondition(any_version=True)
    tag = value.removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise InvalidInput([FieldError("If-Match", 'expected an ETag such as "3" or *')])
    return Precondition(version=int(tag))
