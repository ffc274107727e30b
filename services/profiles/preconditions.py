"""Optimistic concurrency: an `If-Match` as the domain sees it (no HTTP here)."""

from dataclasses import dataclass

from shared.errors import PreconditionFailed


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
