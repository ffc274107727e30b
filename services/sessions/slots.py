"""Free time, pure: each person's weekly windows and date exceptions turned into UTC
intervals in their own zone (so daylight-saving changes fall where they do for them),
intersected across people, minus what is booked, cut into slots of one length.

No database and no HTTP here; intervals are `(start, end)` pairs of aware UTC datetimes,
half-open.
"""

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class Window:
    """Local wall-clock window on a weekday (0 = Monday) or one date."""

    start: time
    end: time


@dataclass(frozen=True)
class DateException:
    """A date that differs: unavailable (whole day, or `start`..`end`), or an extra window."""

    day: date
    available: bool
    start: time | None = None
    end: time | None = None


@dataclass(frozen=True)
class WeeklyAvailability:
    """One person's availability, in their own zone."""

    time_zone: str
    weekly: dict[int, tuple[Window, ...]] = field(default_factory=dict)
    exceptions: tuple[DateException, ...] = ()


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    # A wall time skipped by a spring-forward change maps (fold=0) to the instant an hour
    # later, as calendar apps do; an ambiguous autumn time takes its first occurrence.
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def free_intervals(
    availability: WeeklyAvailability, start: datetime, end: datetime
) -> list[Interval]:
    """The person's available time within `[start, end)`, in UTC, sorted and merged."""
    zone = ZoneInfo(availability.time_zone)
    by_date: dict[date, list[DateException]] = defaultdict(list)
    for exception in availability.exceptions:
        by_date[exception.day].append(exception)
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    result: list[Interval] = []
    while day <= last:
        exceptions = by_date.get(day, ())
        if not any(not e.available and e.start is None for e in exceptions):
            windows = [*availability.weekly.get(day.weekday(), ())]
            windows += [
                Window(e.start, e.end) for e in exceptions if e.available and e.start and e.end
            ]
            opened = [(_local(day, w.start, zone), _local(day, w.end, zone)) for w in windows]
            blocked = [
                (_local(day, e.start, zone), _local(day, e.end, zone))
                for e in exceptions
                if not e.available and e.start and e.end
            ]
            result += subtract(merge(opened), merge(blocked))
        day += timedelta(days=1)
    return clip(merge(result), start, end)


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, with overlapping or touching intervals joined; empty ones dropped."""
    merged: list[Interval] = []
    for lo, hi in sorted(i for i in intervals if i[0] < i[1]):
        if merged and lo <= merged[-1][1]:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def clip(intervals: Sequence[Interval], start: datetime, end: datetime) -> list[Interval]:
    """The parts of sorted intervals inside `[start, end)`."""
    return [(max(lo, start), min(hi, end)) for lo, hi in intervals if hi > start and lo < end]


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """Time in both of two sorted, merged interval lists."""
    result: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            result.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return result


def subtract(free: Sequence[Interval], busy: Sequence[Interval]) -> list[Interval]:
    """Sorted, merged `free` minus sorted, merged `busy`."""
    result: list[Interval] = []
    j = 0
    for lo, hi in free:
        while j < len(busy) and busy[j][1] <= lo:
            j += 1
        k = j
        cursor = lo
        while k < len(busy) and busy[k][0] < hi:
            if busy[k][0] > cursor:
                result.append((cursor, busy[k][0]))
            cursor = max(cursor, busy[k][1])
            k += 1
        if cursor < hi:
            result.append((cursor, hi))
    return result


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def cut(free: Sequence[Interval], duration: timedelta, step: timedelta) -> Iterator[Interval]:
    """Slots exactly `duration` long inside the free intervals, starting on a UTC grid of
    `step` (so a 15- or 30-minute step lands on local quarter hours in every usual zone)."""
    for lo, hi in free:
        offset = (lo - _EPOCH) % step
        at = lo if not offset else lo + (step - offset)
        while at + duration <= hi:
            yield at, at + duration
            at += step


def common_slots(
    people: Sequence[WeeklyAvailability | None],
    busy: Iterable[Interval],
    start: datetime,
    end: datetime,
    duration: timedelta,
    step: timedelta,
) -> list[Interval]:
    """Slots free for everyone: inside each person's availability (none known: no time),
    outside every booked interval. Sorted by start."""
    free: list[Interval] = [(start, end)]
    for availability in people:
        if availability is None:
            return []
        free = intersect(free, free_intervals(availability, start, end))
        if not free:
            return []
    return list(cut(subtract(free, merge(busy)), duration, step))
