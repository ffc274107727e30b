"""A small program end to end: matches through the gateway, session events produced to
the real broker as the sessions service publishes them (one redelivered, one reordered),
feedback answered, goals set and completed, a match ended with NPS answers; every analytics
figure checked against values computed by hand here, and the CSV."""

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from devstack.broker import Broker
from services.feedback.schemas import AnalyticsOut
from shared.events import (
    SessionCancelledV1,
    SessionCompletedV1,
    SessionNoShowV1,
    SessionParticipant,
    SessionScheduledV1,
)
from shared.events.sessions import SessionState
from tests.feedback.program import Program, start_program
from tests.feedback.support import envelope, produce
from tests.helpers import eventually

NOW = datetime.now(UTC).replace(microsecond=0)


def session_event(
    event: type[SessionState],
    program: Program,
    mentee: str,
    session_id: uuid.UUID,
    version: int,
    *,
    starts_at: datetime,
    occurrence: datetime | None = None,
    rrule: str | None = None,
) -> SessionState:
    """A session event of a match as the sessions service would publish it."""
    match = program.matches[mentee]
    status = {
        SessionScheduledV1: "scheduled", SessionCompletedV1: "completed",
        SessionNoShowV1: "no_show", SessionCancelledV1: "cancelled",
    }[event]  # fmt: skip
    return event(
        session_id=session_id,
        version=version,
        match_id=uuid.UUID(match["id"]),
        program_id=uuid.UUID(program.id),
        starts_at=starts_at,
        duration_minutes=45,
        rrule=rrule,
        status="scheduled" if rrule and occurrence else status,
        occurrence_starts_at=occurrence,
        participants=[
            SessionParticipant(external_id=mentee, role="mentee"),
            SessionParticipant(external_id=match["mentor_external_id"] or "", role="mentor"),
        ],
    )


async def requests_of(
    api: httpx.AsyncClient, key: dict[str, str], **params: str
) -> list[dict[str, Any]]:
    response = await api.get("/v1/feedback-requests", params=params, headers=key)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_program_evidence_end_to_end(
    api: httpx.AsyncClient, broker: Broker, org: tuple[str, dict[str, str]]
) -> None:
    org_id, key = org
    program = await start_program(
        api, key, mentors=["M-1", "M-2"], mentees=["E-1", "E-2", "E-3"],
        pairs=[("E-1", "M-1"), ("E-2", "M-2")],
    )  # fmt: skip
    match_a, match_b = program.matches["E-1"]["id"], program.matches["E-2"]["id"]

    # Sessions of match A: a one-off (completed, delivered twice) and a weekly series whose
    # first occurrence was held, second missed, third cancelled. The cancellation
    # (version 5) reaches us before the older completion of that occurrence (version 4).
    s1, s2, s3, s4 = (uuid.uuid4() for _ in range(4))
    week = [NOW - timedelta(days=d) for d in (20, 13, 6)]
    series: dict[str, Any] = {"starts_at": week[0], "rrule": "FREQ=WEEKLY;COUNT=3"}
    one_off = envelope(
        session_event(SessionCompletedV1, program, "E-1", s1, 2, starts_at=NOW - timedelta(days=2)),
        org_id,
    )
    cancelled_third = envelope(
        session_event(SessionCancelledV1, program, "E-1", s2, 5, occurrence=week[2], **series),
        org_id,
    )
    completed_third = envelope(
        session_event(SessionCompletedV1, program, "E-1", s2, 4, occurrence=week[2], **series),
        org_id,
    )
    await produce(
        broker,
        envelope(session_event(SessionScheduledV1, program, "E-1", s1, 1,
                               starts_at=NOW - timedelta(days=2)), org_id),
        one_off,
        envelope(session_event(SessionScheduledV1, program, "E-1", s2, 1, **series), org_id),
        envelope(session_event(SessionCompletedV1, program, "E-1", s2, 2, occurrence=week[0],
                               **series), org_id),
        envelope(session_event(SessionNoShowV1, program, "E-1", s2, 3, occurrence=week[1],
                               **series), org_id),
        cancelled_third,
        completed_third,
        one_off,  # redelivered
        # Match B: one held, one cancelled.
        envelope(session_event(SessionCompletedV1, program, "E-2", s3, 2,
                               starts_at=NOW - timedelta(days=3)), org_id),
        envelope(session_event(SessionCancelledV1, program, "E-2", s4, 2,
                               starts_at=NOW - timedelta(days=1)), org_id),
    )  # fmt: skip

    # One session request per participant per held occurrence: S1, S2's first, S3.
    async def session_requests() -> list[dict[str, Any]]:
        found = await requests_of(api, key, kind="session")
        mine = [r for r in found if r["program_id"] == program.id]
        return mine if len(mine) >= 6 else []

    requests = await eventually(session_requests)
    assert len(requests) == 6
    held = sorted((r["session_id"], r["occurrence_starts_at"], r["employee_external_id"])
                  for r in requests)  # fmt: skip
    assert held == sorted(
        [(str(s1), None, "E-1"), (str(s1), None, "M-1"),
         (str(s2), week[0].isoformat().replace("+00:00", "Z"), "E-1"),
         (str(s2), week[0].isoformat().replace("+00:00", "Z"), "M-1"),
         (str(s3), None, "E-2"), (str(s3), None, "M-2")]
    )  # fmt: skip
    assert {r["status"] for r in requests} == {"pending"}
    e1 = await requests_of(api, key, employee="E-1", status="pending")
    assert len(e1) == 2 and all(r["role"] == "mentee" for r in e1)

    def request_for(who: str, session_id: uuid.UUID) -> str:
        (found,) = [
            r["id"]
            for r in requests
            if r["employee_external_id"] == who and r["session_id"] == str(session_id)
        ]
        return str(found)  # fmt: skip

    async def answer(request_id: str, rating: int, **extra: Any) -> httpx.Response:
        body = {"request_id": request_id, "rating": rating, **extra}
        return await api.post("/v1/feedback", json=body, headers=key)

    comment = "<b>great</b> & <script>alert(1)</script>"
    first = await answer(request_for("E-1", s1), 5, comment=comment, tags=["clear", "useful"])
    assert first.status_code == 201, first.text
    assert first.json()["comment"] == comment and first.json()["tags"] == ["clear", "useful"]
    assert first.json()["role"] == "mentee"
    again = await answer(request_for("E-1", s1), 4)
    assert again.status_code == 409
    nps_on_session = await answer(request_for("M-1", s1), 4, nps=9)
    assert nps_on_session.status_code == 422
    assert nps_on_session.json()["errors"][0]["field"] == "nps"
    bad_rating = await answer(request_for("M-1", s1), 6)
    assert bad_rating.status_code == 422 and bad_rating.json()["errors"][0]["field"] == "rating"
    assert (await answer(request_for("M-1", s1), 4)).status_code == 201
    series_request = [
        r["id"]
        for r in requests
        if r["employee_external_id"] == "E-1" and r["session_id"] == str(s2)
    ]
    assert (await answer(series_request[0], 2)).status_code == 201  # fmt: skip
    assert (await answer(request_for("M-2", s3), 2)).status_code == 201
    # An edit within the window.
    edited = await api.patch(
        f"/v1/feedback/{first.json()['id']}", json={"tags": ["clear"]}, headers=key
    )
    assert edited.status_code == 200 and edited.json()["version"] == 2
    answered = await requests_of(api, key, employee="E-1", status="answered")
    assert len(answered) == 2

    # Check-ins: E-1 is not happy with match A.
    checkin = await api.post(
        f"/v1/matches/{match_a}/check-ins",
        json={"employee_external_id": "E-1", "rating": 2, "comment": "we never meet"},
        headers=key,
    )
    assert checkin.status_code == 201, checkin.text
    assert checkin.json()["role"] == "mentee"
    outsider = await api.post(
        f"/v1/matches/{match_a}/check-ins",
        json={"employee_external_id": "E-2", "rating": 4},
        headers=key,
    )
    assert outsider.status_code == 422
    assert outsider.json()["errors"][0]["field"] == "employee_external_id"
    listed = await api.get(f"/v1/matches/{match_a}/check-ins", headers=key)
    assert [c["rating"] for c in listed.json()["items"]] == [2]
    unknown = await api.get(f"/v1/matches/{uuid.uuid4()}/check-ins", headers=key)
    assert unknown.status_code == 404

    # Goals: two for E-1, one completed through an If-Match guarded PATCH.
    goal_body = {"match_id": match_a, "title": "Lead a design review",
                 "measure": "one review led", "target_date": "2027-03-01",
                 "milestones": [{"title": "shadow a review"}]}  # fmt: skip
    goal = await api.post("/v1/goals", json=goal_body, headers=key)
    assert goal.status_code == 201, goal.text
    assert goal.headers["ETag"] == '"1"' and goal.json()["status"] == "not_started"
    other = await api.post("/v1/goals", json={**goal_body, "title": "Ship a feature"},
                           headers=key)  # fmt: skip
    assert other.status_code == 201
    goal_path = f"/v1/goals/{goal.json()['id']}"
    progress = await api.patch(
        goal_path,
        json={"progress": 40, "status": "in_progress",
              "milestones": [{"title": "shadow a review", "done": True}]},
        headers={**key, "If-Match": '"1"'},
    )  # fmt: skip
    assert progress.status_code == 200, progress.text
    assert progress.headers["ETag"] == '"2"'
    stale = await api.patch(goal_path, json={"progress": 50}, headers={**key, "If-Match": '"1"'})
    assert stale.status_code == 412
    done = await api.patch(
        goal_path, json={"status": "completed"}, headers={**key, "If-Match": '"2"'}
    )
    assert done.status_code == 200 and done.json()["progress"] == 100
    shown = await api.get(goal_path, headers=key)
    assert [h["changes"] for h in shown.json()["history"]][1:] == [
        {"progress": 40, "status": "in_progress",
         "milestones": [{"title": "shadow a review", "due_date": None, "done": True}]},
        {"status": "completed", "progress": 100},
    ]  # fmt: skip
    too_much = await api.patch(goal_path, json={"progress": 101}, headers=key)
    assert too_much.status_code == 422 and too_much.json()["errors"][0]["field"] == "progress"
    goals = await api.get("/v1/goals", params={"match_id": match_a}, headers=key)
    assert len(goals.json()["items"]) == 2

    # Match B ends: both get an end-of-match survey, answered with NPS.
    ended = await api.post(f"/v1/matches/{match_b}/end", json={"reason": "moved"}, headers=key)
    assert ended.status_code == 200, ended.text

    async def surveys() -> list[dict[str, Any]]:
        found = await requests_of(api, key, kind="match_end", match_id=match_b)
        return found if len(found) == 2 else []

    for survey in await eventually(surveys):
        rating, score = (4, 10) if survey["employee_external_id"] == "E-2" else (3, 6)
        response = await answer(survey["id"], rating, nps=score)
        assert response.status_code == 201, response.text

    # At risk: match A (latest check-in 2/5); B has ended.
    at_risk = await api.get(f"/v1/programs/{program.id}/at-risk", headers=key)
    assert at_risk.status_code == 200, at_risk.text
    assert [(i["match_id"], [r["code"] for r in i["reasons"]])
            for i in at_risk.json()["items"]] == [(match_a, ["low_check_in"])]  # fmt: skip

    # Analytics, against the figures by hand.
    response = await api.get(f"/v1/programs/{program.id}/analytics", headers=key)
    assert response.status_code == 200, response.text
    figures = response.json()
    AnalyticsOut.model_validate(figures)  # the documented shape is the one served
    participation = figures["participation"]
    assert participation["mentors"] == {"count": 2}
    assert participation["mentees"] == {"count": 3}
    assert participation["match_rate"] == {"rate": round(2 / 3, 4), "count": 2, "of": 3}
    median = participation["median_days_to_match"]
    assert median["count"] == 2 and 0 <= median["value"] < 1
    engagement = figures["engagement"]
    # Held: S1, S2's first occurrence, S3. Missed: S2's second. Cancelled: S2's third, S4.
    assert engagement["matches"] == {"count": 2}
    assert engagement["sessions_per_match"] == {"value": 1.5, "sessions": 3, "matches": 2}
    assert engagement["cancellation_rate"] == {"rate": round(2 / 6, 4), "count": 2, "of": 6}
    assert engagement["no_show_rate"] == {"rate": 0.25, "count": 1, "of": 4}
    ratings, nps_scores = [5, 4, 2, 2, 4, 3], [10, 6]
    satisfaction = figures["satisfaction"]
    assert satisfaction["average_rating"] == {
        "value": round(sum(ratings) / len(ratings), 4),
        "sum": sum(ratings),
        "count": 6,
    }
    nps = {"score": 0.0, "promoters": 1, "passives": 0, "detractors": 1, "responses": 2}
    assert len(nps_scores) == nps["responses"]
    assert satisfaction["nps"] == nps
    assert satisfaction["average_rating_by_role"] == {
        "mentee": {"value": round(11 / 3, 4), "sum": 11, "count": 3},
        "mentor": {"value": 3.0, "sum": 9, "count": 3},
    }
    month = NOW.strftime("%Y-%m")
    assert satisfaction["by_month"] == [
        {"month": month, "average_rating": satisfaction["average_rating"], "nps": nps}
    ]
    assert figures["goals"] == {
        "set": {"count": 2}, "completed": {"count": 1},
        "completion_rate": {"rate": 0.5, "count": 1, "of": 2},
    }  # fmt: skip

    # A window before anything happened has no sessions, answers or goals.
    empty = await api.get(
        f"/v1/programs/{program.id}/analytics",
        params={"from": "2020-01-01", "to": "2020-12-31"},
        headers=key,
    )
    assert empty.json()["engagement"]["sessions_held"] == {"count": 0}
    assert empty.json()["satisfaction"]["average_rating"]["count"] == 0
    backwards = await api.get(
        f"/v1/programs/{program.id}/analytics", params={"from": "2021-01-01", "to": "2020-01-01"},
        headers=key,
    )  # fmt: skip
    assert backwards.status_code == 422 and backwards.json()["errors"][0]["field"] == "to"

    # The CSV carries the same figures.
    as_csv = await api.get(
        f"/v1/programs/{program.id}/analytics", headers={**key, "Accept": "text/csv"}
    )
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = {(r["figure"], r["month"]): r["value"] for r in csv.DictReader(io.StringIO(as_csv.text))}
    assert rows[("participation.match_rate.rate", "")] == str(round(2 / 3, 4))
    assert rows[("engagement.sessions_per_match.value", "")] == "1.5"
    assert rows[("satisfaction.nps.promoters", "")] == "1"
    assert rows[("satisfaction.by_month.average_rating.sum", month)] == "20"
    assert rows[("goals.completion_rate.of", "")] == "2"
    assert len(rows) == len(set(rows))
