"""The pure slot and recurrence functions, without a database: zones, exceptions, the
UTC grid, and RRULE expansion across a daylight-saving change."""

from datetime import UTC, date, datetime, time, timedelta

import pytest

from services.sessions import recurrence
from services.sessions.slots import (
    DateException,
    WeeklyAvailability,
    Window,
    common_slots,
    free_intervals,
    subtract,
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_exceptions_remove_a_day_part_of_a_day_and_add_a_window() -> None:
    week = WeeklyAvailability(
        "Europe/Berlin",
        {0: (Window(time(9), time(12)),), 1: (Window(time(9), time(12)),)},
        (
            DateException(date(2027, 1, 4), False),  # Monday off
            DateException(date(2027, 1, 5), False, time(10), time(11)),  # Tuesday 10-11 off
            DateException(date(2027, 1, 9), True, time(14), time(15)),  # an extra Saturday
        ),
    )
    free = free_intervals(week, at("2027-01-04T00:00"), at("2027-01-10T00:00"))
    assert free == [
        (at("2027-01-05T08:00"), at("2027-01-05T09:00")),
        (at("2027-01-05T10:00"), at("2027-01-05T11:00")),
        (at("2027-01-09T13:00"), at("2027-01-09T14:00")),
    ]


def test_slots_are_exact_on_the_grid_and_skip_busy_time() -> None:
    week = WeeklyAvailability("UTC", {0: (Window(time(9, 10), time(12)),)})
    busy = [(at("2027-01-04T10:00"), at("2027-01-04T10:30"))]
    slots = common_slots(
        [week, week],
        busy,
        at("2027-01-04T00:00"),
        at("2027-01-05T00:00"),
        timedelta(minutes=30),
        timedelta(minutes=15),
    )
    assert [s[0].strftime("%H:%M") for s in slots] == [
        "09:15",
        "09:30",
        "10:30",
        "10:45",
        "11:00",
        "11:15",
        "11:30",
    ]
    assert all(e - s == timedelta(minutes=30) for s, e in slots)
    # Someone with no availability has no free time.
    assert (
        common_slots(
            [week, None],
            [],
            at("2027-01-04T00:00"),
            at("2027-01-05T00:00"),
            timedelta(minutes=30),
            timedelta(minutes=15),
        )
        == []
    )


def test_subtract_handles_overlapping_and_touching_busy_time() -> None:
    free = [(at("2027-01-04T09:00"), at("2027-01-04T12:00"))]
    busy = [
        (at("2027-01-04T08:00"), at("2027-01-04T09:30")),
        (at("2027-01-04T10:00"), at("2027-01-04T10:30")),
        (at("2027-01-04T10:30"), at("2027-01-04T11:00")),
    ]
    assert subtract(free, busy) == [
        (at("2027-01-04T09:30"), at("2027-01-04T10:00")),
        (at("2027-01-04T11:00"), at("2027-01-04T12:00")),
    ]


def test_a_series_keeps_its_local_time_across_the_change() -> None:
    starts = recurrence.expand("FREQ=WEEKLY;COUNT=3", at("2027-03-23T16:00"), "Europe/Berlin", 10)
    assert [s.strftime("%m-%d %H:%M") for s in starts] == [
        "03-23 16:00",
        "03-30 15:00",
        "04-06 15:00",
    ]


def test_rules_that_cannot_be_used_are_refused() -> None:
    horizon = at("2028-01-01T00:00")
    assert recurrence.normalize("FREQ=WEEKLY", horizon) == "FREQ=WEEKLY;UNTIL=20280101T000000Z"
    for bad in (
        "FREQ=MINUTELY;COUNT=2",
        "DTSTART:20270101T000000Z\nRRULE:FREQ=DAILY",
        "FREQ=DAILY;COUNT=2;UNTIL=20270101T000000Z",
        "COUNT",
    ):
        with pytest.raises(recurrence.RuleError):
            recurrence.normalize(bad, horizon)
    assert recurrence.until_before("FREQ=WEEKLY;COUNT=6", at("2027-01-18T09:00")) == (
        "FREQ=WEEKLY;UNTIL=20270118T085959Z"
    )
    assert recurrence.continued("FREQ=WEEKLY;COUNT=6", 3) == "FREQ=WEEKLY;COUNT=3"
