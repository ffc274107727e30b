"""The whole life of a program across the five services, through the gateway only: people
synced, a program, enrollments, matches (by hand and by runs), sessions booked and
completed, feedback asked and answered, goals, the end of a match with NPS, offboarding,
and program analytics checked against figures computed here. No event is produced by hand
and nothing talks to a service directly: every step is what a client of the API does."""

import csv
import io
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.feedback.program import start_program
from tests.helpers import eventually, member
from tests.matchmaking import active_match

Key = dict[str, str]
Org = tuple[str, Key]


def tag() -> str:
    """A prefix that keeps each test's people apart in the org."""
    return uuid.uuid4().hex[:5].upper()


def at(days: int, hour: int) -> datetime:
    """A whole hour `days` from today (UTC)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=days, hours=hour)


async def book(api: httpx.AsyncClient, key: Key, starts_at: datetime, **party: str) -> str:
    """Book a one-hour session for a match (`match_id=`) or circle (`group_id=`), waiting
    until sessions has learned that the match (or circle) is active; returns its id."""
    body = {**party, "starts_at": starts_at.isoformat(), "duration_minutes": 60}

    async def booked() -> httpx.Response | None:
        response = await api.post("/v1/sessions", json=body, headers=key)
        # Until the match events reached sessions: 404 (unknown) or 409 (not active yet).
        if response.status_code == 404 or (
            response.status_code == 409 and not response.json().get("conflicts")
        ):
            return None
        return response

    response = await eventually(booked)
    assert response is not None
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def mark(api: httpx.AsyncClient, key: Key, session_id: str, what: str) -> dict[str, Any]:
    """Complete a session, mark it a no-show or cancel it."""
    response = await api.post(f"/v1/sessions/{session_id}/{what}", headers=key)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def requests_of(
    api: httpx.AsyncClient, key: Key, count: int, **query: str
) -> list[dict[str, Any]]:
    """Wait until exactly `count` feedback requests match the query; return them."""

    async def found() -> list[dict[str, Any]] | None:
        response = await api.get("/v1/feedback-requests", params={**query, "limit": 100},
                                 headers=key)  # fmt: skip
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items if len(items) == count else None

    items = await eventually(found)
    assert items is not None
    return items


async def answer(
    api: httpx.AsyncClient,
    org_id: str,
    request: dict[str, Any],
    rating: int,
    nps: int | None = None,
) -> dict[str, Any]:
    """The requested person answers their own request (as a member, with their token)."""
    body: dict[str, Any] = {"request_id": request["id"], "rating": rating, "tags": ["e2e"]}
    if nps is not None:
        body["nps"] = nps
    headers = member(org_id, request["employee_external_id"])
    response = await api.post("/v1/feedback", json=body, headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def status_of(api: httpx.AsyncClient, key: Key, match_id: str, status: str) -> bool:
    """Whether the match has reached `status` in matching."""
    response = await api.get(f"/v1/matches/{match_id}", headers=key)
    return response.status_code == 200 and response.json()["status"] == status


async def set_goal(api: httpx.AsyncClient, key: Key, match_id: str, title: str) -> dict[str, Any]:
    """A goal for the match's mentee, once feedback has projected the match."""
    body = {"match_id": match_id, "title": title, "measure": "done or not",
            "milestones": [{"title": "start"}]}  # fmt: skip

    async def created() -> httpx.Response | None:
        response = await api.post("/v1/goals", json=body, headers=key)
        return None if response.status_code == 404 else response

    response = await eventually(created)
    assert response is not None
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def finished_run(
    api: httpx.AsyncClient, key: Key, program_id: str, wanted: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Run matching until a run's result is `wanted` (matching learns enrollments from
    events, so a run started too early sees fewer people); returns that run."""

    async def one_run() -> dict[str, Any] | None:
        started = await api.post(f"/v1/programs/{program_id}/matching-runs", json={},
                                 headers=key)  # fmt: skip
        assert started.status_code == 202, started.text
        run_url = f"/v1/matching-runs/{started.json()['id']}"

        async def done() -> dict[str, Any] | None:
            run: dict[str, Any] = (await api.get(run_url, headers=key)).json()
            assert run["status"] != "failed", run.get("error")
            return run if run["status"] == "succeeded" else None

        run = await eventually(done, timeout=30)
        return run if run is not None and wanted(run) else None

    run = await eventually(one_run, timeout=40, interval=0.5)
    assert run is not None
    return run


async def apply(api: httpx.AsyncClient, key: Key, run_id: str) -> list[dict[str, Any]]:
    """Apply a run; the matches it proposed."""
    applied = await api.post(f"/v1/matching-runs/{run_id}/apply", headers=key)
    assert applied.status_code == 200, applied.text
    return [(await api.get(f"/v1/matches/{m}", headers=key)).json()
            for m in applied.json()["match_ids"]]  # fmt: skip


async def create_program(api: httpx.AsyncClient, key: Key, **extra: Any) -> str:
    """An open program with no department rule."""
    body = {"name": f"P {tag()}", "status": "open", "criteria": {"department_rule": "any"},
            **extra}  # fmt: skip
    response = await api.post("/v1/programs", json=body, headers=key)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def sync(api: httpx.AsyncClient, key: Key, people: list[str]) -> None:
    """Bulk-sync employees as an HRIS would."""
    employees = [{"external_id": x, "email": f"{x.lower()}@example.com", "time_zone": "UTC",
                  "languages": ["en"], "hire_date": "2015-01-01"} for x in people]  # fmt: skip
    synced = await api.post("/v1/employees/bulk", json={"employees": employees}, headers=key)
    assert synced.status_code == 200, synced.text


async def enrol(api: httpx.AsyncClient, key: Key, program_id: str, who: str, role: str) -> str:
    """Enrol someone; the enrollment id."""
    body: dict[str, Any] = {"employee_external_id": who, "role": role, "languages": ["en"],
                            "skills": [{"name": "SQL", "level": 5 if role == "mentor" else 1}],
                            "goals": ["sql"]}  # fmt: skip
    response = await api.post(f"/v1/programs/{program_id}/enrollments", json=body, headers=key)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


# 1. A small program, end to end, and its analytics ------------------------------------


def _figures(f: dict[str, Any]) -> dict[str, Any]:
    """The figures this test computes by hand, picked out of the analytics answer."""
    p, e, s, g = f["participation"], f["engagement"], f["satisfaction"], f["goals"]
    return {
        "mentors": p["mentors"]["count"],
        "mentees": p["mentees"]["count"],
        "match_rate": p["match_rate"],
        "timed": p["median_days_to_match"]["count"],
        "matches": e["matches"]["count"],
        "held": e["sessions_held"]["count"],
        "per_match": e["sessions_per_match"],
        "cancellation": e["cancellation_rate"],
        "no_show": e["no_show_rate"],
        "rating": s["average_rating"],
        "nps": s["nps"],
        "by_role": s["average_rating_by_role"],
        "goals": [g["set"]["count"], g["completed"]["count"], g["completion_rate"]],
    }


async def test_a_small_program_end_to_end_and_its_analytics(
    api: httpx.AsyncClient, org: Org
) -> None:
    org_id, key = org
    t = tag()
    mentor_a, mentor_b = f"{t}-A", f"{t}-B"
    mentee_x, mentee_y, mentee_z = f"{t}-X", f"{t}-Y", f"{t}-Z"
    # Two mentors, three mentees; Z stays unmatched.
    program = await start_program(
        api, key, [mentor_a, mentor_b], [mentee_x, mentee_y, mentee_z],
        [(mentee_x, mentor_a), (mentee_y, mentor_b)],
    )  # fmt: skip
    ax, by = program.matches[mentee_x]["id"], program.matches[mentee_y]["id"]

    # Sessions: A-X meets twice; B-Y meets once, misses once, cancels once.
    ax1 = await book(api, key, at(1, 9), match_id=ax)
    ax2 = await book(api, key, at(2, 9), match_id=ax)
    by1 = await book(api, key, at(1, 11), match_id=by)
    by2 = await book(api, key, at(2, 11), match_id=by)
    by3 = await book(api, key, at(3, 11), match_id=by)
    for session_id in (ax1, ax2, by1):
        completed = await mark(api, key, session_id, "complete")
        assert completed["status"] == "completed"
    assert (await mark(api, key, by2, "no-show"))["status"] == "no_show"
    assert (await mark(api, key, by3, "cancel"))["status"] == "cancelled"

    # Every participant of every completed session is asked, once; no-shows ask nobody.
    asked = await requests_of(api, key, 6, kind="session")
    assert sorted((r["session_id"], r["employee_external_id"], r["role"]) for r in asked) == sorted(
        [(ax1, mentor_a, "mentor"), (ax1, mentee_x, "mentee"), (ax2, mentor_a, "mentor"),
         (ax2, mentee_x, "mentee"), (by1, mentor_b, "mentor"), (by1, mentee_y, "mentee")]
    )  # fmt: skip
    assert all(r["status"] == "pending" and r["program_id"] == program.id for r in asked)
    pending_x = await api.get("/v1/feedback-requests", params={"employee": mentee_x,
                              "status": "pending"}, headers=key)  # fmt: skip
    assert {r["session_id"] for r in pending_x.json()["items"]} == {ax1, ax2}
    ratings = {(ax1, mentor_a): 5, (ax1, mentee_x): 4, (ax2, mentor_a): 4,
               (ax2, mentee_x): 5, (by1, mentor_b): 2, (by1, mentee_y): 3}  # fmt: skip
    given = []
    for request in asked:
        rating = ratings[(request["session_id"], request["employee_external_id"])]
        given.append(await answer(api, org_id, request, rating))
    again = {"request_id": asked[0]["id"], "rating": 1}
    second = await api.post("/v1/feedback", json=again, headers=key)
    assert second.status_code == 409, second.text
    answered = await requests_of(api, key, 6, kind="session", status="answered")
    assert {r["id"] for r in answered} == {r["id"] for r in asked}

    # Goals: two for X (one completed, with If-Match), one for Y (left open).
    goal_1 = await set_goal(api, key, ax, "Lead a design review")
    await set_goal(api, key, ax, "Write an RFC")
    await set_goal(api, key, by, "Ship the migration")
    assert goal_1["mentee_external_id"] == mentee_x and goal_1["program_id"] == program.id
    done = await api.patch(f"/v1/goals/{goal_1['id']}", json={"status": "completed"},
                           headers={**key, "If-Match": f'"{goal_1["version"]}"'})  # fmt: skip
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed" and done.json()["progress"] == 100
    stale = await api.patch(f"/v1/goals/{goal_1['id']}", json={"progress": 10},
                            headers={**key, "If-Match": f'"{goal_1["version"]}"'})  # fmt: skip
    assert stale.status_code == 412, stale.text

    # B-Y ends early: both are asked for an end-of-match answer, with NPS.
    ended = await api.post(f"/v1/matches/{by}/end", json={"reason": "moved team"}, headers=key)
    assert ended.status_code == 200 and ended.json()["status"] == "ended", ended.text
    closing = await requests_of(api, key, 2, kind="match_end", match_id=by)
    assert {r["employee_external_id"] for r in closing} == {mentor_b, mentee_y}
    end_answers = {mentor_b: (4, 9), mentee_y: (2, 7)}  # rating, nps
    for request in closing:
        rating, nps = end_answers[request["employee_external_id"]]
        given.append(await answer(api, org_id, request, rating, nps))
    assert (await api.get(f"/v1/feedback-requests?kind=match_end&match_id={ax}",
                          headers=key)).json()["items"] == []  # fmt: skip

    # Figures computed by hand from what was done above.
    all_ratings = [*ratings.values(), 4, 2]
    mentor_ratings = [5, 4, 2, 4]
    mentee_ratings = [4, 5, 3, 2]
    expected = {
        "mentors": 2,
        "mentees": 3,
        "match_rate": {"rate": round(2 / 3, 4), "count": 2, "of": 3},
        "timed": 2,
        "matches": 2,  # both were active at some time (B-Y has ended since)
        "held": 3,
        "per_match": {"value": 1.5, "sessions": 3, "matches": 2},
        "cancellation": {"rate": 0.2, "count": 1, "of": 5},  # of completed+no-show+cancelled
        "no_show": {"rate": 0.25, "count": 1, "of": 4},  # of completed+no-show
        "rating": {"value": round(sum(all_ratings) / 8, 4), "sum": sum(all_ratings), "count": 8},
        # One promoter (9), one passive (7): 100 * (1 - 0) / 2.
        "nps": {"score": 50.0, "promoters": 1, "passives": 1, "detractors": 0, "responses": 2},
        "by_role": {
            "mentee": {"value": 3.5, "sum": sum(mentee_ratings), "count": 4},
            "mentor": {"value": 3.75, "sum": sum(mentor_ratings), "count": 4},
        },
        "goals": [3, 1, {"rate": round(1 / 3, 4), "count": 1, "of": 3}],
    }
    url = f"/v1/programs/{program.id}/analytics"
    last: list[dict[str, Any]] = []

    async def figures_match() -> bool:
        response = await api.get(url, headers=key)
        assert response.status_code == 200, response.text
        last[:] = [response.json()]
        return _figures(response.json()) == expected

    try:
        await eventually(figures_match)
    except AssertionError:
        assert _figures(last[0]) == expected  # shows the difference
    figures = last[0]
    # Everyone was matched within seconds of enrolling.
    assert 0 <= figures["participation"]["median_days_to_match"]["value"] < 0.01
    months = {answer_["created_at"][:7] for answer_ in given}
    by_month = figures["satisfaction"]["by_month"]
    assert {m["month"] for m in by_month} == months
    assert sum(m["average_rating"]["count"] for m in by_month) == 8
    assert sum(m["nps"]["responses"] for m in by_month) == 2

    # The same figures as CSV: one row per number, named by its dotted path.
    as_csv = await api.get(url, headers={**key, "Accept": "text/csv"})
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[0] == ["figure", "month", "value"]
    values = {(r[0], r[1]): r[2] for r in rows[1:]}
    assert values[("participation.mentees.count", "")] == "3"
    assert values[("engagement.sessions_held.count", "")] == "3"
    assert values[("engagement.no_show_rate.rate", "")] == "0.25"
    assert values[("satisfaction.nps.score", "")] == "50.0"
    assert values[("goals.completion_rate.of", "")] == "3"
    month = by_month[0]["month"]
    assert values[("satisfaction.by_month.nps.promoters", month)] == str(
        by_month[0]["nps"]["promoters"]
    )
    # A member never sees a program's analytics.
    mine = await api.get(url, headers=member(org_id, mentee_x))
    assert mine.status_code == 403, mine.text


# 2. A group program: circles from a run, booked and completed as one session -----------


async def test_group_circle_books_one_session_for_everyone(
    api: httpx.AsyncClient, org: Org
) -> None:
    org_id, key = org
    t = tag()
    leader, members = f"{t}-L", [f"{t}-G1", f"{t}-G2"]
    await sync(api, key, [leader, *members])
    program_id = await create_program(api, key, format="group", max_mentees_per_mentor=2)
    await enrol(api, key, program_id, leader, "mentor")
    for who in members:
        await enrol(api, key, program_id, who, "mentee")

    run = await finished_run(api, key, program_id, lambda r: r["matched_count"] == 2)
    matches = await apply(api, key, run["id"])
    assert len(matches) == 2
    group_ids = {m["group_id"] for m in matches}
    assert len(group_ids) == 1 and None not in group_ids  # one circle, shared by its members
    (group_id,) = group_ids
    for m in matches:
        accepted = await api.post(f"/v1/matches/{m['id']}/accept", headers=key)
        assert accepted.status_code == 200, accepted.text
    group = await api.get(f"/v1/groups/{group_id}", headers=key)
    assert group.status_code == 200, group.text
    assert group.json()["mentor_external_id"] == leader
    assert group.json()["active_members"] == 2
    assert {x["match_id"] for x in group.json()["members"]} == {m["id"] for m in matches}

    # Everyone is free on weekdays 09-17 UTC: the circle's slots are theirs in common.
    week = [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(7)]
    for who in (leader, *members):
        put = await api.put(f"/v1/employees/{who}/availability",
                            json={"time_zone": "UTC", "weekly": week}, headers=key)  # fmt: skip
        assert put.status_code == 200, put.text
    window: dict[str, str | int] = {
        "from": at(1, 0).isoformat(),
        "to": at(2, 0).isoformat(),
        "duration": 60,
    }

    async def slots() -> list[dict[str, Any]]:
        response = await api.get(f"/v1/groups/{group_id}/slots", params=window, headers=key)
        assert response.status_code in (200, 404), response.text
        items: list[dict[str, Any]] = response.json().get("items", [])
        return items

    free = await eventually(slots)
    assert free[0]["starts_at"].startswith(at(1, 9).strftime("%Y-%m-%dT09:00"))
    starts_at = datetime.fromisoformat(free[0]["starts_at"].replace("Z", "+00:00"))
    session_id = await book(api, key, starts_at, group_id=group_id)
    booked = (await api.get(f"/v1/sessions/{session_id}", headers=key)).json()
    assert booked["group_id"] == group_id
    assert {p["employee_external_id"] for p in booked["participants"]} == {leader, *members}
    # The booked hour is no longer free for the circle.
    after = await slots()
    assert all(s["starts_at"] != free[0]["starts_at"] for s in after)

    ics = await api.get(f"/v1/employees/{members[1]}/calendar.ics",
                        headers=member(org_id, members[1]))  # fmt: skip
    assert ics.status_code == 200, ics.text
    assert f"UID:{session_id}@mentorbus" in ics.text

    await mark(api, key, session_id, "complete")
    asked = await requests_of(api, key, 3, kind="session")
    assert {r["employee_external_id"] for r in asked} == {leader, *members}
    assert all(r["session_id"] == session_id and r["group_id"] == group_id for r in asked)


# 3. Flash: one session completes the match; the pair never meets again -----------------


async def test_flash_match_completes_after_its_first_session_and_never_repeats(
    api: httpx.AsyncClient, org: Org
) -> None:
    _, key = org
    t = tag()
    seeker, hosts = f"{t}-F", [f"{t}-H1", f"{t}-H2"]
    await sync(api, key, [seeker, *hosts])
    program_id = await create_program(api, key, format="flash", max_mentees_per_mentor=1)
    await enrol(api, key, program_id, seeker, "mentee")
    for host in hosts:
        await enrol(api, key, program_id, host, "mentor")

    # Both mentors must be known to matching before the first run decides.
    run = await finished_run(api, key, program_id, lambda r: r["matched_count"] == 1)
    [match] = await apply(api, key, run["id"])
    first_mentor = match["mentor_enrollment_id"]
    accepted = await api.post(f"/v1/matches/{match['id']}/accept", headers=key)
    assert accepted.status_code == 200, accepted.text
    session_id = await book(api, key, at(1, 10), match_id=match["id"])
    await mark(api, key, session_id, "complete")
    await eventually(lambda: status_of(api, key, match["id"], "completed"))

    # Later runs propose the other mentor, never the pair that met.
    later = await finished_run(api, key, program_id, lambda r: r["matched_count"] == 1)
    assert [p["mentor_enrollment_id"] for p in later["proposals"]] != [first_mentor]
    assert later["proposals"][0]["mentor_external_id"] != match["mentor_external_id"]


# 4. Offboarding reaches matching, sessions and feedback --------------------------------


async def test_offboarding_ends_the_match_cancels_future_sessions_and_asks_for_feedback(
    api: httpx.AsyncClient, org: Org
) -> None:
    _, key = org
    t = tag()
    pair = await active_match(api, key, f"{t}-OM", f"{t}-OE")
    held = await book(api, key, at(1, 9), match_id=pair.match_id)
    await mark(api, key, held, "complete")
    upcoming = [await book(api, key, at(d, 9), match_id=pair.match_id) for d in (2, 3)]

    gone = await api.delete(f"/v1/employees/{pair.mentee}", headers=key)
    assert gone.status_code == 200, gone.text
    await eventually(lambda: status_of(api, key, pair.match_id, "ended"))

    async def cancelled() -> bool:
        found = [(await api.get(f"/v1/sessions/{s}", headers=key)).json() for s in upcoming]
        return all(s["status"] == "cancelled" for s in found)

    await eventually(cancelled)
    kept = (await api.get(f"/v1/sessions/{held}", headers=key)).json()
    assert kept["status"] == "completed"
    # The mentor who stays is asked about the match; whoever left is not asked. (The match's
    # end and the offboarding travel on two topics: if the end reaches feedback first, the
    # leaver is asked for a moment, and that request expires when the offboarding arrives.)
    [closing] = await requests_of(
        api, key, 1, kind="match_end", match_id=pair.match_id, status="pending"
    )
    assert closing["employee_external_id"] == pair.mentor and closing["role"] == "mentor"
    everyone = await api.get(
        "/v1/feedback-requests",
        params={"kind": "match_end", "match_id": pair.match_id},
        headers=key,
    )
    assert {
        (r["employee_external_id"], r["status"])
        for r in everyone.json()["items"]
        if r["employee_external_id"] != pair.mentor
    } <= {(pair.mentee, "expired")}


# 5. A member sees only what is theirs --------------------------------------------------


async def _status(call: Awaitable[httpx.Response]) -> int:
    return (await call).status_code


async def test_a_member_sees_only_their_own(api: httpx.AsyncClient, org: Org) -> None:
    org_id, key = org
    t = tag()
    mine = await active_match(api, key, f"{t}-M1", f"{t}-E1")
    theirs = await active_match(api, key, f"{t}-M2", f"{t}-E2")
    for pair in (mine, theirs):
        session_id = await book(api, key, at(1, 9), match_id=pair.match_id)
        await mark(api, key, session_id, "complete")
        await set_goal(api, key, pair.match_id, f"goal of {pair.mentee}")
    await requests_of(api, key, 4, kind="session")
    me = member(org_id, mine.mentee)

    sessions = await api.get("/v1/sessions", headers=me)
    assert sessions.status_code == 200, sessions.text
    assert [s["match_id"] for s in sessions.json()["items"]] == [mine.match_id]
    requests = await api.get("/v1/feedback-requests", headers=me)
    assert requests.status_code == 200, requests.text
    assert [r["employee_external_id"] for r in requests.json()["items"]] == [mine.mentee]
    goals = await api.get("/v1/goals", headers=me)
    assert goals.status_code == 200, goals.text
    assert [g["match_id"] for g in goals.json()["items"]] == [mine.match_id]
    matches = await api.get("/v1/matches", headers=me)
    assert matches.status_code == 200, matches.text
    assert [m["id"] for m in matches.json()["items"]] == [mine.match_id]
    assert await _status(api.get(f"/v1/matches/{mine.match_id}", headers=me)) == 200

    # Someone else's: not found (as if it did not exist), even as a list filter (goals of
    # their match); feedback requests asked for by someone else's name are a 403.
    their_session = (await api.get(f"/v1/sessions?match_id={theirs.match_id}", headers=key)).json()
    other = their_session["items"][0]["id"]
    assert await _status(api.get(f"/v1/matches/{theirs.match_id}", headers=me)) == 404
    assert await _status(api.get(f"/v1/sessions/{other}", headers=me)) == 404
    for_them = api.get(f"/v1/feedback-requests?employee={theirs.mentee}", headers=me)
    assert await _status(for_them) == 403
    their_goals = await api.get(f"/v1/goals?match_id={theirs.match_id}", headers=me)
    assert their_goals.status_code == 404, their_goals.text
    their_calendar = api.get(f"/v1/employees/{theirs.mentee}/calendar.ics", headers=me)
    assert await _status(their_calendar) == 404
