"""Recurring sessions, pure: RFC 5545 RRULEs (python-dateutil) expanded in the session's
own zone, so "every other Tuesday at 17:00 Berlin" stays at 17:00 across daylight-saving
changes; and the rule edits a "this and following" change needs."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

ALLOWED_FREQ = {"DAILY", "WEEKLY", "MONTHLY", "YEARLY"}


class RuleError(ValueError):
    """The rule cannot be used (the message says why)."""


def parts(rule: str) -> dict[str, str]:
    """`FREQ=WEEKLY;COUNT=6` as an ordered mapping of its parts (names upper-cased)."""
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    result: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep or not value:
            raise RuleError(f"'{part}' is not NAME=VALUE")
        result[name.strip().upper()] = value.strip().upper()
    return result


def render(rule: dict[str, str]) -> str:
    """The parts back as rule text."""
    return ";".join(f"{name}={value}" for name, value in rule.items())


def _utc_text(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def normalize(rule: str, horizon_end: datetime) -> str:
    """Checked rule text; an open-ended rule gets `UNTIL` at the horizon (documented)."""
    if "\n" in rule or "DTSTART" in rule.upper():
        raise RuleError("give only the RRULE value (e.g. FREQ=WEEKLY;COUNT=6), no DTSTART")
    fields = parts(rule)
    freq = fields.get("FREQ")
    if freq not in ALLOWED_FREQ:
        raise RuleError(f"FREQ must be one of {', '.join(sorted(ALLOWED_FREQ))}")
    if "COUNT" in fields and "UNTIL" in fields:
        raise RuleError("COUNT and UNTIL cannot both be given")
    if "COUNT" not in fields and "UNTIL" not in fields:
        fields["UNTIL"] = _utc_text(horizon_end)
    return render(fields)


def _rule(rule: str, starts_at: datetime, time_zone: str) -> rrule:
    local = starts_at.astimezone(ZoneInfo(time_zone))
    try:
        parsed = rrulestr(rule, dtstart=local, forceset=False)
    except (ValueError, TypeError) as exc:
        raise RuleError(str(exc)) from None
    if not isinstance(parsed, rrule):
        raise RuleError("one RRULE is expected")
    return parsed


def expand(rule: str, starts_at: datetime, time_zone: str, limit: int) -> list[datetime]:
    """The occurrence starts in UTC (at most `limit + 1`, so a caller sees "too many")."""
    result: list[datetime] = []
    for at in _rule(rule, starts_at, time_zone):
        result.append(at.astimezone(UTC))
        if len(result) > limit:
            break
    return result


def until_before(rule: str, at: datetime) -> str:
    """The rule ended just before the occurrence at `at` (for "this and following")."""
    fields = parts(rule)
    fields.pop("COUNT", None)
    fields["UNTIL"] = _utc_text(at - timedelta(seconds=1))
    return render(fields)


def continued(rule: str, remaining: int) -> str:
    """The rule of the series split off at an occurrence: the same, with the occurrences
    left (a COUNT rule counts on from there; an UNTIL rule keeps its end)."""
    fields = parts(rule)
    if "COUNT" in fields:
        fields["COUNT"] = str(remaining)
    return render(fields)
