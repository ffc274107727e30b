"""Calendars through the gateway, read back with the `icalendar` library: stable UIDs,
SEQUENCE raised on change, RRULE, EXDATE for a cancelled occurrence, an override for a
moved one, STATUS:CANCELLED; and the secret feed link read without any header."""

from datetime import UTC, datetime
from typing import Any

import httpx
from icalendar import Calendar

from tests.matchmaking import active_match


def _events(ics: bytes) -> list[Any]:
    # Any: icalendar types each property as a union of every value type it may hold.
    return list(Calendar.from_ical(ics).walk("VEVENT"))


def _utc(value: object) -> datetime:
    assert isinstance(value, datetime)
    return value.astimezone(UTC)


async def test_calendar_ics_and_secret_feed(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    _, key = org
    pair = await active_match(api, key, "K-M", "K-E", mentor_zone="Europe/Berlin")
    other = await active_match(
        api,
        key,
        "K-M",
        "K-X",
        program_id=pair.program_id,
        mentor_enrollment_id=pair.mentor_enrollment_id,
    )
    series = await api.post(
        "/v1/sessions",
        json={
            "match_id": pair.match_id,
            "starts_at": "2027-10-04T08:00:00Z",
            "duration_minutes": 60,
            "rrule": "FREQ=WEEKLY;COUNT=4",
            "title": "Weekly",
        },
        headers=key,
    )
    assert series.status_code == 201, series.text
    one_off = await api.post(
        "/v1/sessions",
        json={
            "match_id": pair.match_id,
            "starts_at": "2027-10-06T15:00:00Z",
            "duration_minutes": 30,
            "title": "Extra",
        },
        headers=key,
    )
    elsewhere = await api.post(
        "/v1/sessions",
        json={
            "match_id": other.match_id,
            "starts_at": "2027-10-07T15:00:00Z",
            "duration_minutes": 30,
        },
        headers=key,
    )
    assert one_off.status_code == 201 and elsewhere.status_code == 201
    sid, oid = series.json()["id"], one_off.json()["id"]
    names = [o["occurrence_starts_at"] for o in series.json()["occurrences"]]

    first = await api.get("/v1/employees/K-E/calendar.ics", headers=key)
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/calendar")
    events = {str(e["UID"]): e for e in _events(first.content)}
    assert set(events) == {f"{sid}@mentorbus", f"{oid}@mentorbus"}  # K-E's sessions only
    master = events[f"{sid}@mentorbus"]
    assert master["RRULE"]["FREQ"] == ["WEEKLY"] and master["RRULE"]["COUNT"] == [4]
    assert master["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert _utc(master.decoded("DTSTART")) == datetime(2027, 10, 4, 8, tzinfo=UTC)
    assert int(master["SEQUENCE"]) == 1

    # Cancel the second occurrence, move the third, cancel the one-off.
    cancelled = await api.post(
        f"/v1/sessions/{sid}/cancel",
        json={"occurrence_starts_at": names[1], "reason": "trip"},
        headers=key,
    )
    assert cancelled.status_code == 200
    moved = await api.patch(
        f"/v1/sessions/{sid}",
        json={"occurrence_starts_at": names[2], "starts_at": "2027-10-18T10:00:00Z"},
        headers=key,
    )
    assert moved.status_code == 200
    assert (await api.post(f"/v1/sessions/{oid}/cancel", headers=key)).status_code == 200

    feed = await api.post("/v1/employees/K-E/calendar-feed", headers=key)
    assert feed.status_code == 201, feed.text
    url = feed.json()["url"]
    async with httpx.AsyncClient(timeout=15) as calendar_app:  # no Authorization header
        fetched = await calendar_app.get(url)
        assert fetched.status_code == 200, fetched.text
        components = _events(fetched.content)
        by_uid: dict[str, list[Any]] = {}
        for e in components:
            by_uid.setdefault(str(e["UID"]), []).append(e)
        assert set(by_uid) == {f"{sid}@mentorbus", f"{oid}@mentorbus"}
        master, override = sorted(by_uid[f"{sid}@mentorbus"], key=lambda e: "RECURRENCE-ID" in e)
        assert int(master["SEQUENCE"]) == 3  # two changes since
        exdates = [_utc(d.dt) for d in master["EXDATE"].dts]
        assert exdates == [datetime(2027, 10, 11, 8, tzinfo=UTC)]
        assert _utc(override.decoded("RECURRENCE-ID")) == datetime(2027, 10, 18, 8, tzinfo=UTC)
        assert _utc(override.decoded("DTSTART")) == datetime(2027, 10, 18, 10, tzinfo=UTC)
        (cancelled_one,) = by_uid[f"{oid}@mentorbus"]
        assert str(cancelled_one["STATUS"]) == "CANCELLED"
        assert int(cancelled_one["SEQUENCE"]) == 2

        # A new link replaces the old one; revoking ends the new one too.
        renewed = await api.post("/v1/employees/K-E/calendar-feed", headers=key)
        assert (await calendar_app.get(url)).status_code == 404
        assert (await calendar_app.get(renewed.json()["url"])).status_code == 200
        revoked = await api.delete("/v1/employees/K-E/calendar-feed", headers=key)
        assert revoked.status_code == 204
        assert (await calendar_app.get(renewed.json()["url"])).status_code == 404
