"""Matching through the public API on the real stack. The projection is fed the way
profiles feeds it: events published to the broker (profiles' own endpoints are not used)."""

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from shared.events import (
    EnrollmentCreatedV1,
    EnrollmentState,
    EnrollmentUpdatedV1,
    EnrollmentWithdrawnV1,
    PersonDeactivatedV1,
    ProgramCreatedV1,
    ProgramUpdatedV1,
)
from tests.helpers import create_org, eventually
from tests.matching.conftest import Connect, Feed, Org
from tests.matching.factories import enrollment_event, person_event, program_event


def suggestions_url(program_id: uuid.UUID, enrollment_id: uuid.UUID) -> str:
    return f"/v1/programs/{program_id}/enrollments/{enrollment_id}/suggestions"


async def test_suggestions_are_ranked_explained_and_respect_hard_rules(
    api: httpx.AsyncClient, org: Org, feed: Feed, admin: dict[str, str]
) -> None:
    org_id, key = org
    program = program_event()
    boss = person_event(f"boss-{uuid.uuid4()}")
    mentee_p = person_event(f"e-{uuid.uuid4()}", manager_external_id=boss.external_id)
    good_p = person_event(f"good-{uuid.uuid4()}", department="Sales")
    ok_p = person_event(f"ok-{uuid.uuid4()}")
    ja_p = person_event(f"ja-{uuid.uuid4()}", languages=["ja"])
    pid = program.program_id
    mentee = enrollment_event(
        pid, mentee_p, "mentee", skills={"Python": 2}, goals=["Get better at Python", "SQL"]
    )
    mentors = {
        "boss": enrollment_event(pid, boss, "mentor", skills={"python": 5, "sql": 5}),
        "good": enrollment_event(pid, good_p, "mentor", skills={"Python 3": 5, "Postgres": 2,
                                                                "SQL": 4}),
        "ok": enrollment_event(pid, ok_p, "mentor", skills={"python": 3}),
        "ja": enrollment_event(pid, ja_p, "mentor", skills={"python": 5, "sql": 5}),
    }  # fmt: skip
    await feed.send(org_id, program, boss, mentee_p, good_p, ok_p, ja_p)
    await feed.send(org_id, mentee, *mentors.values())

    found = await api.get(suggestions_url(pid, mentee.enrollment_id), headers=key)
    assert found.status_code == 200, found.text
    items = found.json()["items"]
    # The manager (own chain) and the mentor sharing no language never appear.
    assert [i["mentor_enrollment_id"] for i in items] == [
        str(mentors["good"].enrollment_id),
        str(mentors["ok"].enrollment_id),
    ]
    best = items[0]
    assert best["score"] > items[1]["score"]
    assert {line["criterion"] for line in best["breakdown"]} >= {"skills", "goals", "languages"}
    for line in best["breakdown"]:
        assert set(line) == {"criterion", "value", "weight", "contribution"}
    assert sum(line["contribution"] for line in best["breakdown"]) == pytest.approx(
        best["score"], abs=1e-5
    )
    assert "shares 2 of 2 goal skills: python, sql" in best["reasons"]
    assert "shares 1 of 2 goal skills: python" in items[1]["reasons"]

    one = await api.get(suggestions_url(pid, mentee.enrollment_id) + "?limit=1", headers=key)
    assert len(one.json()["items"]) == 1

    # New criteria arrive with the program's next version and apply at once.
    same_department = ProgramUpdatedV1(
        **{
            **program.model_dump(),
            "version": 2,
            "criteria": {"weights": {"department": 100}, "department_rule": "same"},
        }
    )
    await feed.send(org_id, same_department)
    again = (await api.get(suggestions_url(pid, mentee.enrollment_id), headers=key)).json()
    assert [i["mentor_enrollment_id"] for i in again["items"]] == [
        str(mentors["ok"].enrollment_id),
        str(mentors["good"].enrollment_id),
    ]
    assert any(r.startswith("same department") for r in again["items"][0]["reasons"])
    missing = await api.get(suggestions_url(pid, uuid.uuid4()), headers=key)
    assert missing.status_code == 404
    _, stranger = await create_org(api, admin)
    hidden = await api.get(suggestions_url(pid, mentee.enrollment_id), headers=stranger)
    assert hidden.status_code == 404
    # Both sides: a mentor enrollment's suggestions are mentees, explained the same way;
    # the boss is never suggested their own report.
    as_mentor = await api.get(suggestions_url(pid, mentors["ok"].enrollment_id), headers=key)
    assert as_mentor.status_code == 200, as_mentor.text
    [suited] = as_mentor.json()["items"]
    assert suited["mentee_enrollment_id"] == str(mentee.enrollment_id)
    assert suited["score"] == pytest.approx(again["items"][0]["score"], abs=1e-6)
    assert suited["reasons"] == again["items"][0]["reasons"]
    as_boss = await api.get(suggestions_url(pid, mentors["boss"].enrollment_id), headers=key)
    assert as_boss.status_code == 200 and as_boss.json()["items"] == []


async def setup_cohort(
    feed: Feed,
    org_id: str,
    mentees: int,
    mentors: int,
    *,
    capacity: int | None = None,
    max_per_mentor: int = 5,
    criteria: dict[str, Any] | None = None,
) -> tuple[ProgramCreatedV1, list[EnrollmentCreatedV1], list[EnrollmentCreatedV1]]:
    """A program with simple mentees (wanting SQL) and mentors (knowing it)."""
    program = program_event(max_mentees_per_mentor=max_per_mentor, criteria=criteria)
    tag = uuid.uuid4().hex[:6]
    people = [person_event(f"{tag}-e{i}") for i in range(mentees)]
    people += [person_event(f"{tag}-m{j}", department="Sales") for j in range(mentors)]
    e = [enrollment_event(program.program_id, p, "mentee", goals=["sql"]) for p in people[:mentees]]
    m = [
        enrollment_event(
            program.program_id, p, "mentor", skills={"SQL": 3 + j % 3}, capacity=capacity
        )
        for j, p in enumerate(people[mentees:])
    ]
    await feed.send(org_id, program, *people)
    await feed.send(org_id, *e, *m)
    return program, e, m


async def test_match_lifecycle_with_events(
    api: httpx.AsyncClient, org: Org, feed: Feed, service_db: Connect, admin: dict[str, str]
) -> None:
    org_id, key = org
    program, mentees, (mentor,) = await setup_cohort(feed, org_id, 2, 1)

    def pair(mentee: EnrollmentState) -> dict[str, str]:
        return {
            "program_id": str(program.program_id),
            "mentee_enrollment_id": str(mentee.enrollment_id),
            "mentor_enrollment_id": str(mentor.enrollment_id),
        }

    created = await api.post("/v1/matches", json=pair(mentees[0]), headers=key)
    assert created.status_code == 201, created.text
    match = created.json()
    assert match["status"] == "proposed" and match["score"] > 0
    assert match["breakdown"] and match["reasons"]
    again = await api.post("/v1/matches", json=pair(mentees[0]), headers=key)
    assert again.status_code == 409

    got = await api.get(f"/v1/matches/{match['id']}", headers=key)
    assert got.status_code == 200 and got.headers["etag"] == '"1"'
    accepted = await api.post(f"/v1/matches/{match['id']}/accept", headers=key)
    assert accepted.status_code == 200 and accepted.json()["status"] == "active"
    no_reason = await api.post(f"/v1/matches/{match['id']}/end", json={}, headers=key)
    assert no_reason.status_code == 422
    ended = await api.post(
        f"/v1/matches/{match['id']}/end", json={"reason": "changed teams"}, headers=key
    )
    assert ended.json()["status"] == "ended" and ended.json()["end_reason"] == "changed teams"

    second = (await api.post("/v1/matches", json=pair(mentees[1]), headers=key)).json()
    declined = await api.post(f"/v1/matches/{second['id']}/decline", headers=key)
    assert declined.json()["status"] == "declined"
    late = await api.post(f"/v1/matches/{second['id']}/accept", headers=key)
    assert late.status_code == 409
    rematch = await api.post("/v1/matches", json=pair(mentees[1]), headers=key)
    assert rematch.status_code == 409  # the mentor declined this mentee before

    listed = await api.get(
        "/v1/matches", params={"program_id": str(program.program_id), "limit": 1}, headers=key
    )
    page = listed.json()
    assert [m["id"] for m in page["items"]] == [match["id"]] and page["next_cursor"]
    rest = await api.get(
        "/v1/matches",
        params={"program_id": str(program.program_id), "cursor": page["next_cursor"]},
        headers=key,
    )
    assert [m["id"] for m in rest.json()["items"]] == [second["id"]]
    by_status = await api.get("/v1/matches", params={"status": "ended"}, headers=key)
    assert [m["id"] for m in by_status.json()["items"]] == [match["id"]]

    _, stranger = await create_org(api, admin)
    assert (await api.get(f"/v1/matches/{match['id']}", headers=stranger)).status_code == 404

    conn = await service_db("matching")
    try:

        async def published() -> list[str]:
            rows = await conn.fetch(
                "SELECT event_type, published_at FROM outbox_message WHERE key = $1 ORDER BY id",
                match["id"],
            )
            return [r["event_type"] for r in rows] if all(r["published_at"] for r in rows) else []

        assert await eventually(published) == [
            "mentorbus.match.created.v1",
            "mentorbus.match.accepted.v1",
            "mentorbus.match.ended.v1",
        ]
    finally:
        await conn.close()


async def test_capacity_holds_under_concurrent_requests(
    api: httpx.AsyncClient, org: Org, feed: Feed, service_db: Connect
) -> None:
    org_id, key = org
    program, mentees, mentors = await setup_cohort(feed, org_id, 8, 3, capacity=2)
    mentor = mentors[0]

    async def propose(mentee: EnrollmentState, to: EnrollmentState) -> httpx.Response:
        body = {
            "program_id": str(program.program_id),
            "mentee_enrollment_id": str(mentee.enrollment_id),
            "mentor_enrollment_id": str(to.enrollment_id),
        }
        return await api.post("/v1/matches", json=body, headers=key)

    # One mentee asking three mentors at once gets exactly one open match.
    racing = await asyncio.gather(*(propose(mentees[7], m) for m in mentors))
    assert sorted(r.status_code for r in racing) == [201, 409, 409]

    proposals = await asyncio.gather(*(propose(m, mentor) for m in mentees[:7]))
    assert all(r.status_code == 201 for r in proposals), [r.text for r in proposals]
    ids = [r.json()["id"] for r in proposals]
    accepts = await asyncio.gather(*(api.post(f"/v1/matches/{i}/accept", headers=key) for i in ids))
    assert sorted(r.status_code for r in accepts) == [200, 200, 409, 409, 409, 409, 409]
    assert all("capacity" in r.json()["detail"] for r in accepts if r.status_code == 409)

    conn = await service_db("matching")
    try:
        active = await conn.fetchval(
            "SELECT count(*) FROM match WHERE mentor_enrollment_id = $1 AND status = 'active'",
            mentor.enrollment_id,
        )
        assert active == 2
    finally:
        await conn.close()
    # A full mentor is no longer suggested, and new requests to them are refused.
    found = await api.get(
        suggestions_url(program.program_id, mentees[6].enrollment_id), headers=key
    )
    assert str(mentor.enrollment_id) not in {
        i["mentor_enrollment_id"] for i in found.json()["items"]
    }


async def test_withdrawal_and_deactivation_remove_candidates(
    api: httpx.AsyncClient, org: Org, feed: Feed
) -> None:
    org_id, key = org
    program, (mentee,), mentors = await setup_cohort(feed, org_id, 1, 3)
    url = suggestions_url(program.program_id, mentee.enrollment_id)

    async def suggested() -> set[str]:
        response = await api.get(url, headers=key)
        return {i["mentor_enrollment_id"] for i in response.json()["items"]}

    assert await suggested() == {str(m.enrollment_id) for m in mentors}
    body = {
        "program_id": str(program.program_id),
        "mentee_enrollment_id": str(mentee.enrollment_id),
        "mentor_enrollment_id": str(mentors[0].enrollment_id),
    }
    match = (await api.post("/v1/matches", json=body, headers=key)).json()

    withdrawn = EnrollmentWithdrawnV1(
        **{**mentors[0].model_dump(), "version": 2, "status": "withdrawn"}
    )
    person = person_event(mentors[1].employee_external_id)
    gone = PersonDeactivatedV1(
        **{**person.model_dump(), "version": 2, "employment_status": "inactive"}
    )
    await feed.send(org_id, withdrawn, gone)
    assert await suggested() == {str(mentors[2].enrollment_id)}
    ended = (await api.get(f"/v1/matches/{match['id']}", headers=key)).json()
    assert ended["status"] == "declined" and ended["end_reason"] == "the enrollment was withdrawn"


async def test_cohort_run_proposes_explains_and_applies(
    api: httpx.AsyncClient, org: Org, feed: Feed, service_db: Connect
) -> None:
    org_id, key = org
    program, _, _ = await setup_cohort(feed, org_id, 6, 2, max_per_mentor=2)
    loner_p = person_event(f"loner-{uuid.uuid4()}", languages=["ja"])
    loner = enrollment_event(program.program_id, loner_p, "mentee", goals=["sql"])
    await feed.send(org_id, loner_p)
    await feed.send(org_id, loner)
    base = f"/v1/programs/{program.program_id}/matching-runs"

    bad = await api.post(base, json={"objective": "max_fun"}, headers=key)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "objective"
    nowhere = await api.post(f"/v1/programs/{uuid.uuid4()}/matching-runs", json={}, headers=key)
    assert nowhere.status_code == 404

    started = await api.post(
        base, json={"objective": "max_participation", "min_score": 0.2}, headers=key
    )
    assert started.status_code == 202, started.text
    assert started.json()["status"] in ("pending", "running", "succeeded")
    run_id = started.json()["id"]

    async def finished() -> Any:
        run = (await api.get(f"/v1/matching-runs/{run_id}", headers=key)).json()
        return run if run["status"] in ("succeeded", "failed") else None

    run = await eventually(finished)
    assert run["status"] == "succeeded", run["error"]
    assert run["progress"] == 1.0 and run["inputs_version"]["program_version"] == 1
    proposals = run["proposals"]
    assert len(proposals) == 4  # two mentors with two places each
    assert run["total_score"] == pytest.approx(sum(p["score"] for p in proposals), abs=1e-4)
    per_mentor: dict[str, int] = {}
    for p in proposals:
        per_mentor[p["mentor_enrollment_id"]] = per_mentor.get(p["mentor_enrollment_id"], 0) + 1
        assert p["reasons"] and p["breakdown"]
    assert sorted(per_mentor.values()) == [2, 2]
    unmatched = {u["mentee_enrollment_id"]: u["reason"] for u in run["unmatched"]}
    assert len(unmatched) == 3
    assert "share no language" in unmatched[str(loner.enrollment_id)]

    listed = await api.get(base, headers=key)
    assert [r["id"] for r in listed.json()["items"]] == [run_id]
    assert "proposals" not in listed.json()["items"][0]

    applied = await api.post(f"/v1/matching-runs/{run_id}/apply", headers=key)
    assert applied.status_code == 200, applied.text
    assert applied.json()["created"] == 4 and applied.json()["skipped"] == []
    matches = await api.get("/v1/matches", params={"run_id": run_id}, headers=key)
    assert sorted(m["mentee_enrollment_id"] for m in matches.json()["items"]) == sorted(
        p["mentee_enrollment_id"] for p in proposals
    )
    assert all(m["status"] == "proposed" for m in matches.json()["items"])
    twice = await api.post(f"/v1/matching-runs/{run_id}/apply", headers=key)
    assert twice.status_code == 409
    conn = await service_db("matching")
    try:
        announced = await conn.fetchval(
            "SELECT count(*) FROM outbox_message WHERE event_type = $1 AND key = ANY($2::text[])",
            "mentorbus.match.created.v1",
            applied.json()["match_ids"],
        )
        assert announced == 4
    finally:
        await conn.close()

    # A second run sees the places those proposals hold: nothing is left to propose.
    again = (await api.post(base, json={}, headers=key)).json()
    rerun = await eventually(lambda: _finished(api, key, again["id"]))
    assert rerun["proposals"] == [] and len(rerun["unmatched"]) == 3


async def _finished(api: httpx.AsyncClient, key: dict[str, str], run_id: str) -> Any:
    run = (await api.get(f"/v1/matching-runs/{run_id}", headers=key)).json()
    return run if run["status"] in ("succeeded", "failed") else None


async def test_a_mentees_preferences_change_who_ranks_first(
    api: httpx.AsyncClient, org: Org, feed: Feed
) -> None:
    org_id, key = org
    program = program_event()
    pid = program.program_id
    tag = uuid.uuid4().hex[:6]
    mentee_p = person_event(f"{tag}-e")
    near_p = person_event(f"{tag}-near")  # same time zone: first without preferences
    berlin_p = person_event(
        f"{tag}-berlin",
        time_zone="Europe/Berlin",
        department="Data",
        attributes={"location": "Berlin"},
    )
    mentee = enrollment_event(pid, mentee_p, "mentee", skills={"python": 2})
    near = enrollment_event(pid, near_p, "mentor", skills={"python": 5})
    berlin = enrollment_event(pid, berlin_p, "mentor", skills={"python": 5})
    await feed.send(org_id, program, mentee_p, near_p, berlin_p)
    await feed.send(org_id, mentee, near, berlin)
    url = suggestions_url(pid, mentee.enrollment_id)

    before = (await api.get(url, headers=key)).json()["items"]
    assert [i["mentor_enrollment_id"] for i in before] == [
        str(near.enrollment_id),
        str(berlin.enrollment_id),
    ]
    assert all("preferences" not in {c["criterion"] for c in i["breakdown"]} for i in before)

    wishes = {"department": "data", "location": ["Berlin", "Remote"], "languages": ["de"],
              "shoe_size": 42}  # fmt: skip
    updated = EnrollmentUpdatedV1(**{**mentee.model_dump(), "version": 2, "preferences": wishes})
    await feed.send(org_id, updated)
    after = (await api.get(url, headers=key)).json()["items"]
    assert [i["mentor_enrollment_id"] for i in after] == [
        str(berlin.enrollment_id),
        str(near.enrollment_id),
    ]
    best = {c["criterion"]: c for c in after[0]["breakdown"]}
    assert best["preferences"]["value"] == pytest.approx(2 / 3)
    assert "meets 2 of 3 stated preferences (department, location)" in after[0]["reasons"]
    assert sum(c["contribution"] for c in best.values()) == pytest.approx(
        after[0]["score"], abs=1e-5
    )
    other = {c["criterion"]: c for c in after[1]["breakdown"]}
    assert other["preferences"]["value"] == 0.0
