"""Every program format through the gateway: group circles, peer pairs (the exact optimum
on a general graph), reverse mentoring, flash rounds; and runs that tell when K alone left
a mentee out. The projection is fed with events, as profiles (and sessions) publish them."""

import itertools
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.events import EnrollmentCreatedV1, PersonUpsertedV1, SessionCompletedV1
from tests.helpers import eventually
from tests.matching.conftest import Feed, Org
from tests.matching.factories import enrollment_event, person_event, program_event


async def finished_run(api: httpx.AsyncClient, key: dict[str, str], program_id: uuid.UUID,
                       **options: Any) -> dict[str, Any]:  # fmt: skip
    """Start a run and wait for it to succeed."""
    started = await api.post(f"/v1/programs/{program_id}/matching-runs", json=options, headers=key)
    assert started.status_code == 202, started.text

    async def done() -> dict[str, Any] | None:
        run: dict[str, Any] = (
            await api.get(f"/v1/matching-runs/{started.json()['id']}", headers=key)
        ).json()
        assert run["status"] != "failed", run.get("error")
        return run if run["status"] == "succeeded" else None

    run: dict[str, Any] | None = await eventually(done, timeout=30)
    assert run is not None
    return run


async def applied(api: httpx.AsyncClient, key: dict[str, str], run_id: str) -> list[dict[str, Any]]:
    """Apply a run; the matches it created."""
    answer = await api.post(f"/v1/matching-runs/{run_id}/apply", headers=key)
    assert answer.status_code == 200, answer.text
    return [
        (await api.get(f"/v1/matches/{m}", headers=key)).json() for m in answer.json()["match_ids"]
    ]


def tag() -> str:
    return uuid.uuid4().hex[:6]


async def test_group_run_forms_circles_with_mixed_departments(
    api: httpx.AsyncClient, org: Org, feed: Feed
) -> None:
    org_id, key = org
    program = program_event(format="group", max_mentees_per_mentor=2)
    pid, t = program.program_id, tag()
    leaders = [person_event(f"{t}-L{j}", department="Leadership") for j in range(2)]
    departments = ["Sales", "Sales", "Data", "Data"]
    members = [person_event(f"{t}-M{i}", department=d) for i, d in enumerate(departments)]
    lead = [enrollment_event(pid, p, "mentor", skills={"SQL": 5}) for p in leaders]
    join = [enrollment_event(pid, p, "mentee", goals=["sql"]) for p in members]
    await feed.send(org_id, program, *leaders, *members)
    await feed.send(org_id, *lead, *join)

    run = await finished_run(api, key, pid, one_mentee_per_department=True)
    assert run["matched_count"] == 4 and run["unmatched"] == []
    matches = await applied(api, key, run["id"])
    circles: dict[str, list[dict[str, Any]]] = {}
    for m in matches:
        assert m["group_id"] is not None
        circles.setdefault(m["group_id"], []).append(m)
    assert len(circles) == 2
    by_department = {p.external_id: p.department for p in members}
    for group_id, circle in circles.items():
        assert len({m["mentor_enrollment_id"] for m in circle}) == 1  # one leader per circle
        # Mixed: one Sales and one Data member in each circle.
        assert sorted(str(by_department[m["mentee_external_id"]]) for m in circle) == [
            "Data",
            "Sales",
        ]
        group = await api.get(f"/v1/groups/{group_id}", headers=key)
        assert group.status_code == 200, group.text
        body = group.json()
        assert body["program_id"] == str(pid)
        assert body["mentor_enrollment_id"] == circle[0]["mentor_enrollment_id"]
        assert {x["match_id"] for x in body["members"]} == {m["id"] for m in circle}
        assert body["active_members"] == 0  # proposed until the leader accepts
    first = matches[0]
    accepted = await api.post(f"/v1/matches/{first['id']}/accept", headers=key)
    assert accepted.status_code == 200 and accepted.json()["group_id"] == first["group_id"]
    group = (await api.get(f"/v1/groups/{first['group_id']}", headers=key)).json()
    assert group["active_members"] == 1
    assert (await api.get(f"/v1/groups/{uuid.uuid4()}", headers=key)).status_code == 404
    nobody = {"Authorization": "Bearer nope"}
    assert (await api.get(f"/v1/groups/{first['group_id']}", headers=nobody)).status_code == 401


def _peer(pid: uuid.UUID, person: PersonUpsertedV1, has: dict[str, int],
          wants: list[str]) -> EnrollmentCreatedV1:  # fmt: skip
    return enrollment_event(pid, person, "both", skills=has, goals=wants)


async def test_peer_run_is_the_brute_force_optimum_where_a_bipartite_split_is_worse(
    api: httpx.AsyncClient, org: Org, feed: Feed
) -> None:
    """Five peers, one pair each. The best pairs are P0-P1 and P2-P3 (each teaches what
    the other wants); splitting peers into two fixed sides ({P0, P1} learn from {P2, P3})
    can only form the weak cross pairs."""
    org_id, key = org
    program = program_event(format="peer", max_mentees_per_mentor=1)
    pid, t = program.program_id, tag()
    people = [person_event(f"{t}-P{i}") for i in range(5)]
    peers = [
        _peer(pid, people[0], {"Python": 5, "Go": 2}, ["sql"]),
        _peer(pid, people[1], {"SQL": 5, "Go": 3}, ["python"]),
        _peer(pid, people[2], {"Sales": 5, "Go": 4}, ["design"]),
        _peer(pid, people[3], {"Design": 5}, ["sales"]),
        _peer(pid, people[4], {"Leadership": 3}, ["go"]),
    ]
    await feed.send(org_id, program, *people)
    await feed.send(org_id, *peers)
    ids = [str(p.enrollment_id) for p in peers]

    # Every allowed pair's symmetric score, from each peer's own suggestions.
    weight: dict[tuple[int, int], float] = {}
    for a, peer in enumerate(peers):
        url = f"/v1/programs/{pid}/enrollments/{peer.enrollment_id}/suggestions?limit=100"
        found = await api.get(url, headers=key)
        assert found.status_code == 200, found.text
        for item in found.json()["items"]:
            b = ids.index(item["mentor_enrollment_id"])
            assert b != a
            key_ab = (min(a, b), max(a, b))
            if key_ab in weight:  # the same score seen from either side
                assert weight[key_ab] == pytest.approx(item["score"], abs=1e-6)
            weight[key_ab] = item["score"]
            assert any(r.startswith(f"for {people[a].external_id}: ") for r in item["reasons"])
    assert len(weight) == 10

    def best(pairs: list[tuple[int, int]]) -> float:
        top = 0.0
        for size in range(len(pairs) + 1):
            for subset in itertools.combinations(pairs, size):
                used = [x for pair in subset for x in pair]
                if len(used) == len(set(used)):
                    top = max(top, sum(weight[p] for p in subset))
        return top

    optimum = best(list(weight))
    split = best([(a, b) for a in (0, 1) for b in (2, 3)])
    assert split < optimum - 0.1

    run = await finished_run(api, key, pid)
    assert run["total_score"] == pytest.approx(optimum, abs=1e-4)
    pairs = {
        frozenset((ids.index(p["mentee_enrollment_id"]), ids.index(p["mentor_enrollment_id"])))
        for p in run["proposals"]
    }
    assert pairs == {frozenset((0, 1)), frozenset((2, 3))}
    assert [u["mentee_enrollment_id"] for u in run["unmatched"]] == [ids[4]]

    matches = await applied(api, key, run["id"])
    assert len(matches) == 2
    # The same pair is never proposed again, in either direction.
    again = await finished_run(api, key, pid)
    assert again["proposals"] == []
    reverse = {
        "program_id": str(pid),
        "mentee_enrollment_id": matches[0]["mentor_enrollment_id"],
        "mentor_enrollment_id": matches[0]["mentee_enrollment_id"],
    }
    refused = await api.post("/v1/matches", json=reverse, headers=key)
    assert refused.status_code == 409


async def test_reverse_program_ranks_junior_mentors_and_says_so(
    api: httpx.AsyncClient, org: Org, feed: Feed
) -> None:
    org_id, key = org
    program = program_event(format="reverse")
    pid, t, today = program.program_id, tag(), date.today()
    executive = person_event(f"{t}-exec", hire_date=today - timedelta(days=365 * 15))
    junior = person_event(f"{t}-junior", hire_date=today - timedelta(days=365))
    veteran = person_event(f"{t}-veteran", hire_date=today - timedelta(days=365 * 25))
    mentee = enrollment_event(pid, executive, "mentee", goals=["tiktok"], skills={"TikTok": 1})
    young = enrollment_event(pid, junior, "mentor", skills={"TikTok": 5})
    old = enrollment_event(pid, veteran, "mentor", skills={"TikTok": 5})
    await feed.send(org_id, program, executive, junior, veteran)
    await feed.send(org_id, mentee, young, old)
    url = f"/v1/programs/{pid}/enrollments/{mentee.enrollment_id}/suggestions"
    items = (await api.get(url, headers=key)).json()["items"]
    assert [i["mentor_enrollment_id"] for i in items] == [
        str(young.enrollment_id),
        str(old.enrollment_id),
    ]
    assert items[0]["score"] > items[1]["score"]
    assert any(
        r.startswith("reverse mentoring: junior to the mentee by 14.0 years") and "as wanted" in r
        for r in items[0]["reasons"]
    )
    assert any(r.startswith("reverse mentoring: senior") for r in items[1]["reasons"])


async def test_flash_rounds_never_repeat_a_pair_and_complete_after_a_session(
    api: httpx.AsyncClient, org: Org, feed: Feed
) -> None:
    org_id, key = org
    program = program_event(format="flash", max_mentees_per_mentor=1)
    pid, t = program.program_id, tag()
    person = person_event(f"{t}-e")
    hosts = [person_event(f"{t}-m{j}") for j in range(2)]
    mentee = enrollment_event(pid, person, "mentee", goals=["sql"])
    mentors = [enrollment_event(pid, p, "mentor", skills={"SQL": 5}) for p in hosts]
    await feed.send(org_id, program, person, *hosts)
    await feed.send(org_id, mentee, *mentors)

    met: list[str] = []
    for _ in range(2):
        run = await finished_run(api, key, pid)
        [match] = await applied(api, key, run["id"])
        assert match["mentor_enrollment_id"] not in met
        met.append(match["mentor_enrollment_id"])
        accepted = await api.post(f"/v1/matches/{match['id']}/accept", headers=key)
        assert accepted.status_code == 200
        done = SessionCompletedV1(
            session_id=uuid.uuid4(),
            version=2,
            match_id=uuid.UUID(match["id"]),
            program_id=pid,
            starts_at=datetime.now(UTC),
            duration_minutes=15,
            status="completed",
        )
        await feed.publish(org_id, done)

        async def completed(match_id: str = match["id"]) -> dict[str, Any] | None:
            found = (await api.get(f"/v1/matches/{match_id}", headers=key)).json()
            return found if found["status"] == "completed" else None

        finished = await eventually(completed)
        assert finished is not None
        # A second completed session (or occurrence) changes nothing.
        await feed.publish(org_id, done.model_copy(update={"session_id": uuid.uuid4()}))
        await feed.send(org_id, program)  # a later event of another topic, as a barrier
        later = (await api.get(f"/v1/matches/{match['id']}", headers=key)).json()
        assert later["version"] == finished["version"]
    # Third round: everybody met already.
    run = await finished_run(api, key, pid)
    assert run["proposals"] == []
    assert "no mentor is allowed" in run["unmatched"][0]["reason"]


async def test_run_says_when_only_the_candidate_limit_left_a_mentee_out(
    api: httpx.AsyncClient, org: Org, feed: Feed
) -> None:
    """Two mentees both rank mentor A first; A has one place, B has one. With one
    candidate each, one mentee is left out though B is free: the run says K did it."""
    org_id, key = org
    program = program_event(max_mentees_per_mentor=1)
    pid, t = program.program_id, tag()
    people = [person_event(f"{t}-{x}") for x in ("e1", "e2", "A", "B")]
    seekers = [enrollment_event(pid, p, "mentee", goals=["sql"]) for p in people[:2]]
    a = enrollment_event(pid, people[2], "mentor", skills={"SQL": 5})
    b = enrollment_event(pid, people[3], "mentor", skills={"SQL": 2})
    await feed.send(org_id, program, *people)
    await feed.send(org_id, *seekers, a, b)
    narrow = await finished_run(api, key, pid, candidates_per_mentee=1)
    [left] = narrow["unmatched"]
    assert "only because of the candidate limit" in left["reason"]
    wide = await finished_run(api, key, pid, candidates_per_mentee=2)
    assert wide["unmatched"] == [] and wide["matched_count"] == 2


async def test_rematching_rules_and_the_mentor_directory(
    api: httpx.AsyncClient, org: Org, feed: Feed
) -> None:
    """A declined or ended pair is never suggested or proposed again; with
    `prefer_previous_mentor` a mentor the mentee completed a match with is favoured. The
    directory filters and ranks mentors, each with reasons."""
    org_id, key = org
    program = program_event(max_mentees_per_mentor=2, criteria={"prefer_previous_mentor": 1})
    pid, t = program.program_id, tag()
    people = [person_event(f"{t}-e")] + [
        person_event(f"{t}-m{j}", languages=["en", "de"] if j == 2 else ["en"]) for j in range(4)
    ]
    mentee = enrollment_event(pid, people[0], "mentee", goals=["sql"], skills={"SQL": 3})
    levels = [5, 4, 3, 2]
    mentors = [
        enrollment_event(pid, p, "mentor", skills={"SQL": lv, "Go": 2}, capacity=1 + (j == 3))
        for j, (p, lv) in enumerate(zip(people[1:], levels, strict=True))
    ]
    await feed.send(org_id, program, *people)
    await feed.send(org_id, mentee, *mentors)
    url = f"/v1/programs/{pid}/enrollments/{mentee.enrollment_id}/suggestions"

    async def suggested() -> list[str]:
        items = (await api.get(url, headers=key)).json()["items"]
        return [mentors_by_id[i["mentor_enrollment_id"]] for i in items]

    mentors_by_id = {str(m.enrollment_id): f"m{j}" for j, m in enumerate(mentors)}

    async def ask(j: int) -> dict[str, Any]:
        body = {
            "program_id": str(pid),
            "mentee_enrollment_id": str(mentee.enrollment_id),
            "mentor_enrollment_id": str(mentors[j].enrollment_id),
        }
        made = await api.post("/v1/matches", json=body, headers=key)
        assert made.status_code == 201, made.text
        return dict(made.json())

    first = await suggested()
    assert first[:2] == ["m0", "m1"] and set(first[2:]) == {"m2", "m3"}
    declined = await ask(0)
    assert (await api.post(f"/v1/matches/{declined['id']}/decline", headers=key)).status_code == 200
    ended = await ask(1)
    await api.post(f"/v1/matches/{ended['id']}/accept", headers=key)
    end = await api.post(f"/v1/matches/{ended['id']}/end", json={"reason": "x"}, headers=key)
    assert end.status_code == 200
    assert set(await suggested()) == {"m2", "m3"}  # never again: m0 declined, m1 ended
    again = await api.post(
        "/v1/matches",
        json={
            "program_id": str(pid),
            "mentee_enrollment_id": str(mentee.enrollment_id),
            "mentor_enrollment_id": str(mentors[0].enrollment_id),
        },
        headers=key,
    )
    assert again.status_code == 409
    run = await finished_run(api, key, pid)
    assert {p["mentor_enrollment_id"] for p in run["proposals"]} <= {
        str(mentors[2].enrollment_id),
        str(mentors[3].enrollment_id),
    }
    # A completed match with m3 (no better than m2) makes m3 the first suggestion.
    done = await ask(3)
    await api.post(f"/v1/matches/{done['id']}/accept", headers=key)
    assert (await api.post(f"/v1/matches/{done['id']}/complete", headers=key)).status_code == 200
    items = (await api.get(url, headers=key)).json()["items"]
    assert [mentors_by_id[i["mentor_enrollment_id"]] for i in items] == ["m3", "m2"]
    assert items[0]["score"] > items[1]["score"]
    assert "mentored this mentee before in this program" in items[0]["reasons"]
    assert "previous_mentor" in {c["criterion"] for c in items[0]["breakdown"]}

    # The directory.
    base = f"/v1/programs/{pid}/mentors"
    listed = (await api.get(base + "?skill=sql", headers=key)).json()["items"]
    assert [e["employee_external_id"] for e in listed] == [f"{t}-m{j}" for j in range(4)]
    assert "knows sql at level 5 of 5" in listed[0]["reasons"]
    assert {"enrollment_id", "employee_external_id", "skills", "languages",
            "remaining_capacity", "reasons"} <= set(listed[0])  # fmt: skip
    german = (await api.get(base + "?language=de-AT", headers=key)).json()["items"]
    assert [e["employee_external_id"] for e in german] == [f"{t}-m2"]
    # m0 and m1 have their places free again, m2 has one, m3 has two (the completed match
    # no longer holds one).
    free = (await api.get(base + "?has_capacity=true&q=go", headers=key)).json()["items"]
    assert len(free) == 4 and all(e["remaining_capacity"] > 0 for e in free)
    assert free[0]["employee_external_id"] == f"{t}-m3"  # ties on Go: most places first
    assert (await api.get(base + "?q=astrology", headers=key)).json()["items"] == []
    page = await api.get(base + "?limit=3", headers=key)
    assert len(page.json()["items"]) == 3 and page.json()["next_cursor"]
    rest = await api.get(base + f"?limit=3&cursor={page.json()['next_cursor']}", headers=key)
    assert len(rest.json()["items"]) == 1 and rest.json()["next_cursor"] is None
    bad = await api.get(base + "?cursor=bm9wZQ", headers=key)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"
