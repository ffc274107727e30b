"""Booking through the gateway: one-off and recurring sessions, 409s naming every
conflicting occurrence, exactly one winner among concurrent bookings of one time, a
series edited in the middle, cancel, complete and no-show, and the member rule."""

import asyncio
from typing import Any

import httpx

from devstack.stack import Stack
from tests.helpers import member
from tests.matchmaking import ActiveMatch, active_match
from tests.sessions.support import utc


async def _two_matches_of_one_mentor(
    api: httpx.AsyncClient, key: dict[str, str], prefix: str
) -> tuple[ActiveMatch, ActiveMatch]:
    first = await active_match(api, key, f"{prefix}-M", f"{prefix}-E1", mentor_zone="Europe/Berlin")
    second = await active_match(
        api,
        key,
        f"{prefix}-M",
        f"{prefix}-E2",
        program_id=first.program_id,
        mentor_enrollment_id=first.mentor_enrollment_id,
    )
    return first, second


async def _book(api: httpx.AsyncClient, key: dict[str, str], **body: Any) -> httpx.Response:
    return await api.post("/v1/sessions", json=body, headers=key)


async def test_book_one_off_and_series_and_conflicts_name_every_occurrence(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]], stack: Stack
) -> None:
    org_id, key = org
    first, second = await _two_matches_of_one_mentor(api, key, "B")
    one_off = await _book(
        api,
        key,
        match_id=first.match_id,
        starts_at="2027-05-03T10:00:00Z",
        duration_minutes=45,
        title="Kick-off",
    )
    assert one_off.status_code == 201, one_off.text
    s = one_off.json()
    assert s["status"] == "scheduled" and s["rrule"] is None and s["time_zone"] == "Europe/Berlin"
    assert {(p["employee_external_id"], p["role"]) for p in s["participants"]} == {
        ("B-M", "mentor"),
        ("B-E1", "mentee"),
    }
    assert len(s["occurrences"]) == 1

    # Every two weeks, six times, 17:00 in Berlin across the March change.
    series = await _book(
        api,
        key,
        match_id=first.match_id,
        starts_at="2027-03-02T16:00:00Z",
        duration_minutes=60,
        rrule="FREQ=WEEKLY;INTERVAL=2;COUNT=6",
    )
    assert series.status_code == 201, series.text
    occurrences = series.json()["occurrences"]
    assert [o["starts_at"][:16] for o in occurrences] == [
        "2027-03-02T16:00",
        "2027-03-16T16:00",
        "2027-03-30T15:00",
        "2027-04-13T15:00",
        "2027-04-27T15:00",
        "2027-05-11T15:00",
    ]

    # The mentor's other match cannot take times they are booked: the 409 names the
    # one-off session, and every occurrence of the series in the way.
    clash = await _book(
        api, key, match_id=second.match_id, starts_at="2027-05-03T10:30:00Z", duration_minutes=30
    )
    assert clash.status_code == 409, clash.text
    assert [c["session_id"] for c in clash.json()["conflicts"]] == [s["id"]]
    weekly = await _book(
        api,
        key,
        match_id=second.match_id,
        starts_at="2027-03-30T15:30:00Z",
        duration_minutes=60,
        rrule="FREQ=WEEKLY;COUNT=3",
    )
    assert weekly.status_code == 409, weekly.text
    conflicts = weekly.json()["conflicts"]
    assert [c["occurrence_starts_at"][:16] for c in conflicts] == [
        "2027-03-30T15:00",
        "2027-04-13T15:00",
    ]
    assert {c["session_id"] for c in conflicts} == {series.json()["id"]}
    # Back to back is fine.
    after = await _book(
        api, key, match_id=second.match_id, starts_at="2027-05-03T10:45:00Z", duration_minutes=30
    )
    assert after.status_code == 201, after.text

    # 422s name the field.
    bad_rule = await _book(
        api,
        key,
        match_id=first.match_id,
        starts_at="2027-06-01T10:00:00Z",
        duration_minutes=30,
        rrule="FREQ=HOURLY;COUNT=3",
    )
    assert bad_rule.status_code == 422 and bad_rule.json()["errors"][0]["field"] == "rrule"
    neither = await _book(api, key, starts_at="2027-06-01T10:00:00Z", duration_minutes=30)
    assert neither.status_code == 422 and neither.json()["errors"][0]["field"] == "match_id"

    # Lists and the member rule: the other match's mentee sees neither of the first's.
    listed = await api.get("/v1/sessions", params={"match_id": first.match_id}, headers=key)
    assert [i["id"] for i in listed.json()["items"]] == [s["id"], series.json()["id"]]
    async with httpx.AsyncClient(base_url=stack.url(), timeout=15) as direct:
        path = f"/v1/sessions/{s['id']}"
        assert (await direct.get(path, headers=member(org_id, "B-E1"))).status_code == 200
        assert (await direct.get(path, headers=member(org_id, "B-E2"))).status_code == 404
        mine = await direct.get("/v1/sessions", headers=member(org_id, "B-E2"))
        assert [i["id"] for i in mine.json()["items"]] == [after.json()["id"]]


async def test_concurrent_bookings_of_one_time_exactly_one_wins(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    _, key = org
    first, second = await _two_matches_of_one_mentor(api, key, "C")
    attempts = await asyncio.gather(
        *[
            _book(
                api, key, match_id=m.match_id, starts_at="2027-07-05T09:00:00Z", duration_minutes=60
            )
            for m in (first, second, first, second, first, second)
        ]
    )
    statuses = sorted(r.status_code for r in attempts)
    assert statuses == [201, 409, 409, 409, 409, 409], [r.text for r in attempts]
    winner = next(r.json()["id"] for r in attempts if r.status_code == 201)
    for loser in (r for r in attempts if r.status_code == 409):
        # One entry per person whose time it takes (both, when it is the same match).
        assert {c["session_id"] for c in loser.json()["conflicts"]} == {winner}


async def test_series_edited_in_the_middle_then_cancel_complete_no_show(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    _, key = org
    pair = await active_match(api, key, "S-M", "S-E", mentor_zone="Europe/Berlin")
    created = await _book(
        api,
        key,
        match_id=pair.match_id,
        starts_at="2027-09-06T08:00:00Z",
        duration_minutes=60,
        rrule="FREQ=WEEKLY;COUNT=6",
        title="Weekly",
    )
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    names = [o["occurrence_starts_at"] for o in created.json()["occurrences"]]

    # Move the second occurrence only, by an hour.
    moved = await api.patch(
        f"/v1/sessions/{sid}",
        json={"occurrence_starts_at": names[1], "starts_at": "2027-09-13T09:00:00Z"},
        headers=key,
    )
    assert moved.status_code == 200, moved.text
    second = moved.json()["occurrences"][1]
    assert (
        second["occurrence_starts_at"] == names[1]
        and second["starts_at"][:16] == "2027-09-13T09:00"
    )
    assert moved.json()["version"] == 2

    # From the fourth on: 10:00 Berlin (08:00 UTC) becomes 14:00 Berlin, 30 minutes.
    split = await api.patch(
        f"/v1/sessions/{sid}",
        json={
            "occurrence_starts_at": names[3],
            "scope": "following",
            "starts_at": "2027-09-27T12:00:00Z",
            "duration_minutes": 30,
            "title": "Weekly, later",
        },
        headers=key,
    )
    assert split.status_code == 200, split.text
    new = split.json()
    assert new["id"] != sid and new["split_from"] == sid and new["title"] == "Weekly, later"
    assert new["rrule"] == "FREQ=WEEKLY;COUNT=3"
    assert [o["starts_at"][:16] for o in new["occurrences"]] == [
        "2027-09-27T12:00",
        "2027-10-04T12:00",
        "2027-10-11T12:00",
    ]
    assert all(
        (utc(o["ends_at"]) - utc(o["starts_at"])).total_seconds() == 1800
        for o in new["occurrences"]
    )
    old = (await api.get(f"/v1/sessions/{sid}", headers=key)).json()
    assert len(old["occurrences"]) == 3 and old["rrule"].startswith("FREQ=WEEKLY;UNTIL=")
    assert old["title"] == "Weekly" and old["version"] == 3

    # Cancel one occurrence of the new series; complete one and mark another missed.
    cancelled = await api.post(
        f"/v1/sessions/{new['id']}/cancel",
        json={
            "reason": "holiday",
            "occurrence_starts_at": new["occurrences"][1]["occurrence_starts_at"],
        },
        headers=key,
    )
    assert cancelled.status_code == 200, cancelled.text
    assert [o["status"] for o in cancelled.json()["occurrences"]] == [
        "scheduled",
        "cancelled",
        "scheduled",
    ]
    assert cancelled.json()["occurrences"][1]["reason"] == "holiday"
    needs_occurrence = await api.post(f"/v1/sessions/{sid}/complete", headers=key)
    assert needs_occurrence.status_code == 422
    assert needs_occurrence.json()["errors"][0]["field"] == "occurrence_starts_at"
    done = await api.post(
        f"/v1/sessions/{sid}/complete", json={"occurrence_starts_at": names[0]}, headers=key
    )
    assert done.status_code == 200 and done.json()["occurrences"][0]["status"] == "completed"
    again = await api.post(
        f"/v1/sessions/{sid}/complete", json={"occurrence_starts_at": names[0]}, headers=key
    )
    assert again.status_code == 409
    missed = await api.post(
        f"/v1/sessions/{sid}/no-show", json={"occurrence_starts_at": names[2]}, headers=key
    )
    assert missed.json()["occurrences"][2]["status"] == "no_show"

    # The freed time is bookable again; cancelling the rest of the old series frees it.
    rest = await api.post(f"/v1/sessions/{sid}/cancel", json={"reason": "done"}, headers=key)
    assert rest.status_code == 200 and rest.json()["status"] == "completed"
    assert [o["status"] for o in rest.json()["occurrences"]] == [
        "completed",
        "cancelled",
        "no_show",
    ]
    one_off = await _book(
        api, key, match_id=pair.match_id, starts_at="2027-09-13T09:00:00Z", duration_minutes=60
    )
    assert one_off.status_code == 201, one_off.text
    cancel_whole = await api.post(
        f"/v1/sessions/{one_off.json()['id']}/cancel", json={"reason": "sick"}, headers=key
    )
    assert cancel_whole.json()["status"] == "cancelled" and cancel_whole.json()["reason"] == "sick"


async def test_a_move_into_booked_time_is_a_409_naming_it(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    _, key = org
    pair = await active_match(api, key, "P-M", "P-E")
    first = await _book(
        api, key, match_id=pair.match_id, starts_at="2027-11-01T09:00:00Z", duration_minutes=60
    )
    second = await _book(
        api, key, match_id=pair.match_id, starts_at="2027-11-02T09:00:00Z", duration_minutes=60
    )
    moved = await api.patch(
        f"/v1/sessions/{second.json()['id']}",
        json={"starts_at": "2027-11-01T09:30:00Z"},
        headers=key,
    )
    assert moved.status_code == 409, moved.text
    assert {c["session_id"] for c in moved.json()["conflicts"]} == {first.json()["id"]}
    # Nothing changed, and a free time works.
    kept = (await api.get(f"/v1/sessions/{second.json()['id']}", headers=key)).json()
    assert kept["starts_at"][:16] == "2027-11-02T09:00" and kept["version"] == 1
    ok = await api.patch(
        f"/v1/sessions/{second.json()['id']}",
        json={"starts_at": "2027-11-01T10:00:00Z"},
        headers=key,
    )
    assert ok.status_code == 200 and ok.json()["version"] == 2


async def test_this_and_following_keeps_the_cancelled_occurrences_cancelled(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]]
) -> None:
    _, key = org
    pair = await active_match(api, key, "K-M", "K-E", mentor_zone="Europe/Berlin")
    created = await _book(
        api,
        key,
        match_id=pair.match_id,
        starts_at="2027-11-01T09:00:00Z",
        duration_minutes=60,
        rrule="FREQ=WEEKLY;COUNT=5",
    )
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    names = [o["occurrence_starts_at"] for o in created.json()["occurrences"]]
    for name in (names[0], names[3]):
        off = await api.post(
            f"/v1/sessions/{sid}/cancel",
            json={"occurrence_starts_at": name, "reason": "holiday"},
            headers=key,
        )
        assert off.status_code == 200, off.text

    # From the third on, an hour later: the fourth stays cancelled (its time stays free).
    split = await api.patch(
        f"/v1/sessions/{sid}",
        json={
            "occurrence_starts_at": names[2],
            "scope": "following",
            "starts_at": "2027-11-15T10:00:00Z",
        },
        headers=key,
    )
    assert split.status_code == 200, split.text
    new = split.json()
    assert [(o["starts_at"][:16], o["status"], o["reason"]) for o in new["occurrences"]] == [
        ("2027-11-15T10:00", "scheduled", None),
        ("2027-11-22T10:00", "cancelled", "holiday"),
        ("2027-11-29T10:00", "scheduled", None),
    ]
    old = (await api.get(f"/v1/sessions/{sid}", headers=key)).json()
    assert [o["status"] for o in old["occurrences"]] == ["cancelled", "scheduled"]
    free = await _book(
        api, key, match_id=pair.match_id, starts_at="2027-11-22T10:00:00Z", duration_minutes=30
    )
    assert free.status_code == 201, free.text

    # From the first: the whole series moves, and the first stays cancelled too.
    whole = await api.patch(
        f"/v1/sessions/{sid}",
        json={
            "occurrence_starts_at": names[0],
            "scope": "following",
            "starts_at": "2027-11-01T11:00:00Z",
        },
        headers=key,
    )
    assert whole.status_code == 200, whole.text
    assert [o["status"] for o in whole.json()["occurrences"]] == ["cancelled", "scheduled"]
