"""Learning tracks and mentoring agreements through the gateway, on real matches: a track
edited while in use (old matches keep their version), who may complete a step, overdue
steps, templates and copies, and agreements reset by an edit."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from devstack.broker import Broker
from devstack.stack import Stack
from shared.events import MatchAcceptedV1
from tests.feedback.setup_matches import active_match, employees, enrol, get_when_ready, program
from tests.feedback.support import Connect, envelope, produce, rows
from tests.helpers import member

Org = tuple[str, dict[str, str]]

MODULES = [
    {"title": "Start", "steps": [
        {"id": "goals", "kind": "task", "title": "Write goals", "due_day": 7,
         "completed_by": "mentee"},
        {"id": "talk", "kind": "discussion", "title": "Talk", "prompt": "Why?",
         "completed_by": "both"},
    ]},
    {"title": "Read", "steps": [
        {"id": "book", "kind": "resource", "title": "A book", "url": "https://example.com/b",
         "completed_by": "mentor"},
    ]},
]  # fmt: skip


async def outbox_types(connect: Connect, key: str) -> list[str]:
    found = await rows(
        connect, "SELECT event_type FROM outbox_message WHERE key = $1 ORDER BY id", key
    )
    return [r["event_type"] for r in found]


async def test_track_versions_step_rules_overdue_and_completion(
    api: httpx.AsyncClient, org: Org, stack: Stack, broker: Broker, service_db: Connect
) -> None:
    org_id, key = org
    await employees(
        api, key,
        [{"external_id": x, "department": "Eng"} for x in ("TM", "TE", "TE2", "TX")],
    )  # fmt: skip
    program_id = await program(api, key, starts_on="2026-01-01")
    mentor = await enrol(api, key, program_id, "TM", "mentor")
    mentee = await enrol(api, key, program_id, "TE", "mentee")
    mentee_2 = await enrol(api, key, program_id, "TE2", "mentee")

    bad = await api.post(
        f"/v1/programs/{program_id}/tracks",
        json={"name": "x", "modules": [{"title": "m", "steps": [{"kind": "resource",
              "title": "no link"}]}]},
        headers=key,
    )  # fmt: skip
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "modules.0.steps.0"
    created = await api.post(
        f"/v1/programs/{program_id}/tracks",
        json={"name": "Basics", "modules": MODULES, "is_default": True},
        headers=key,
    )
    assert created.status_code == 201, created.text
    track = created.json()
    assert track["version"] == 1 and track["modules"][1]["steps"][0]["id"] == "book"

    first = await active_match(api, key, program_id, mentee, mentor)
    view = await get_when_ready(api, key, f"/v1/matches/{first}/track")
    assert (view["track_id"], view["version"]) == (track["id"], 1)
    assert [(s["step_id"], s["status"]) for s in view["steps"]] == [
        ("goals", "open"), ("talk", "open"), ("book", "open"),
    ]  # fmt: skip

    # Edited while in use: a new version; the match keeps version 1, a new match gets 2.
    extra = {"id": "extra", "kind": "check_in", "title": "Check in", "completed_by": "both"}
    edited_modules = [*MODULES, {"title": "More", "steps": [extra]}]
    edited = await api.patch(
        f"/v1/tracks/{track['id']}", json={"modules": edited_modules}, headers=key
    )
    assert edited.status_code == 200 and edited.json()["version"] == 2
    again = (await api.get(f"/v1/matches/{first}/track", headers=key)).json()
    assert again["version"] == 1 and len(again["steps"]) == 3
    second = await active_match(api, key, program_id, mentee_2, mentor)
    second_view = await get_when_ready(api, key, f"/v1/matches/{second}/track")
    assert second_view["version"] == 2 and len(second_view["steps"]) == 4

    complete = f"/v1/matches/{first}/track/steps/{{}}/complete"
    # Wrong people: an outsider, and the mentor on the mentee's step.
    outsider = await api.post(
        complete.format("goals"), json={"employee_external_id": "TX"}, headers=key
    )
    assert outsider.status_code == 403, outsider.text
    wrong_role = await api.post(
        complete.format("goals"), json={"employee_external_id": "TM"}, headers=key
    )
    assert wrong_role.status_code == 403
    unknown = await api.post(
        complete.format("nope"), json={"employee_external_id": "TE"}, headers=key
    )
    assert unknown.status_code == 404

    done = await api.post(
        complete.format("goals"), json={"employee_external_id": "TE"}, headers=key
    )
    assert done.status_code == 200, done.text
    goals = done.json()["steps"][0]
    assert goals["status"] == "done" and goals["completions"][0]["employee_external_id"] == "TE"
    twice = await api.post(
        complete.format("goals"), json={"employee_external_id": "TE"}, headers=key
    )
    assert twice.json()["steps"][0] == goals  # idempotent: same time, one completion

    # Members (end users), as the gateway forwards them: only participants, only as
    # themselves, only their role's part.
    feedback = httpx.AsyncClient(base_url=stack.url(), timeout=10)
    try:
        hidden = await feedback.get(f"/v1/matches/{first}/track", headers=member(org_id, "TX"))
        assert hidden.status_code == 404
        as_other = await feedback.post(
            complete.format("talk"), json={"employee_external_id": "TM"},
            headers=member(org_id, "TE"),
        )  # fmt: skip
        assert as_other.status_code == 403
        half = await feedback.post(complete.format("talk"), headers=member(org_id, "TE"))
        assert half.status_code == 200, half.text
        assert half.json()["steps"][1]["status"] == "open"  # `both`: the mentor still owes
        assert (
            await feedback.post(complete.format("book"), headers=member(org_id, "TE"))
        ).status_code == 403
        await feedback.post(complete.format("talk"), headers=member(org_id, "TM"))
        last = await feedback.post(complete.format("book"), headers=member(org_id, "TM"))
        assert last.status_code == 200
        assert {s["status"] for s in last.json()["steps"]} == {"done"}
        assert last.json()["completed_at"] is not None
    finally:
        await feedback.aclose()
    # Moved to the current version: the three steps done still count, the new one is open.
    moved = await api.patch(f"/v1/matches/{first}/track", json={}, headers=key)
    assert moved.status_code == 200, moved.text
    assert moved.json()["version"] == 2 and moved.json()["completed_at"] is None
    assert [s["status"] for s in moved.json()["steps"]] == ["done", "done", "done", "open"]
    types = await outbox_types(service_db, first)
    assert types.count("mentorbus.track.step_completed.v1") == 4
    assert types[0] == "mentorbus.track.assigned.v1"
    assert types[-2:] == ["mentorbus.track.completed.v1", "mentorbus.track.assigned.v1"]

    # A match that became active 30 days ago (a real event on the broker): its step due on
    # day 7 is overdue and its agreement unsigned since: both are at-risk reasons.
    template = {"expectations": "Show up"}
    await api.put(f"/v1/programs/{program_id}/agreement-template", json=template, headers=key)
    late = uuid.uuid4()
    started = datetime.now(UTC) - timedelta(days=30)
    accepted = MatchAcceptedV1(
        match_id=late, program_id=uuid.UUID(program_id), version=2, status="active",
        mentee_enrollment_id=uuid.UUID(mentee), mentor_enrollment_id=uuid.UUID(mentor),
        mentee_external_id="TE", mentor_external_id="TM",
    )  # fmt: skip
    await produce(broker, envelope(accepted, org_id, at=started))
    late_view = await get_when_ready(api, key, f"/v1/matches/{late}/track")
    assert late_view["started_on"] == started.date().isoformat()
    assert [s["status"] for s in late_view["steps"]][:2] == ["overdue", "open"]
    assert late_view["steps"][0]["due_on"] == (started.date() + timedelta(days=7)).isoformat()
    risk = await api.get(f"/v1/programs/{program_id}/at-risk", headers=key)
    assert risk.status_code == 200, risk.text
    (flagged,) = [i for i in risk.json()["items"] if i["match_id"] == str(late)]
    codes = {r["code"]: r["detail"] for r in flagged["reasons"]}
    assert codes["overdue_track_steps"] == "1 overdue track step: 'Write goals'"
    assert codes["agreement_unsigned"] == "agreement unsigned 30 days after it was drafted"
    # The first match finished its track and has no template-made agreement: neither reason.
    assert str(first) not in {
        i["match_id"] for i in risk.json()["items"] if "overdue_track_steps" in str(i)
    }


async def test_templates_copies_and_listing(api: httpx.AsyncClient, org: Org) -> None:
    _, key = org
    source = await program(api, key, starts_on="2026-01-01")
    target = await program(api, key, name="Other", starts_on="2026-01-01")
    templated = await api.post(
        f"/v1/programs/{source}/tracks", json={"template": "onboarding"}, headers=key
    )
    assert templated.status_code == 201, templated.text
    assert templated.json()["name"] == "Onboarding"
    copied = await api.post(
        f"/v1/tracks/{templated.json()['id']}/copy",
        json={"program_id": target, "name": "Onboarding (EMEA)"},
        headers=key,
    )
    assert copied.status_code == 201
    assert copied.json()["program_id"] == target
    assert copied.json()["modules"] == templated.json()["modules"]
    listed = await api.get(f"/v1/programs/{target}/tracks", params={"limit": 1}, headers=key)
    assert [t["name"] for t in listed.json()["items"]] == ["Onboarding (EMEA)"]
    assert listed.json()["next_cursor"] is None
    missing = await api.post(
        f"/v1/programs/{uuid.uuid4()}/tracks", json={"template": "leadership"}, headers=key
    )
    assert missing.status_code == 404


async def test_agreement_drafted_signed_and_reset_on_edit(
    api: httpx.AsyncClient, org: Org, stack: Stack, service_db: Connect
) -> None:
    org_id, key = org
    await employees(api, key, [{"external_id": x} for x in ("AM", "AE", "AX")])
    program_id = await program(api, key, starts_on="2026-01-01")
    template = {"expectations": "Come prepared", "cadence": "Every two weeks",
                "duration": "Six months", "confidentiality": "What is said stays",
                "goals": ["Lead a project"]}  # fmt: skip
    put = await api.put(f"/v1/programs/{program_id}/agreement-template", json=template, headers=key)
    assert put.status_code == 200, put.text
    mentor = await enrol(api, key, program_id, "AM", "mentor")
    mentee = await enrol(api, key, program_id, "AE", "mentee")
    match_id = await active_match(api, key, program_id, mentee, mentor)
    path = f"/v1/matches/{match_id}/agreement"
    draft = await get_when_ready(api, key, path)
    assert (draft["status"], draft["version"], draft["signatures"]) == ("draft", 1, [])
    assert "Cadence: Every two weeks" in draft["text"] and "- Lead a project" in draft["text"]

    outsider = await api.post(f"{path}/sign", json={"employee_external_id": "AX"}, headers=key)
    assert outsider.status_code == 403
    one = await api.post(f"{path}/sign", json={"employee_external_id": "AE"}, headers=key)
    assert one.status_code == 200 and one.json()["status"] == "draft"
    assert one.json()["signatures"][0]["version"] == 1

    edited = await api.patch(path, json={**template, "cadence": "Weekly"}, headers=key)
    assert edited.status_code == 200, edited.text
    assert (edited.json()["version"], edited.json()["signatures"]) == (2, [])
    stale = await api.post(
        f"{path}/sign", json={"employee_external_id": "AE", "version": 1}, headers=key
    )
    assert stale.status_code == 409
    feedback = httpx.AsyncClient(base_url=stack.url(), timeout=10)
    try:
        not_theirs = await feedback.post(f"{path}/sign", json={}, headers=member(org_id, "AX"))
        assert not_theirs.status_code == 404
        await feedback.post(f"{path}/sign", json={"version": 2}, headers=member(org_id, "AE"))
        signed = await feedback.post(f"{path}/sign", json={}, headers=member(org_id, "AM"))
    finally:
        await feedback.aclose()
    body = signed.json()
    assert body["status"] == "signed" and body["signed_at"] is not None
    assert {(s["employee_external_id"], s["version"]) for s in body["signatures"]} == {
        ("AE", 2), ("AM", 2),
    }  # fmt: skip
    found = await rows(
        service_db,
        "SELECT payload FROM outbox_message WHERE key = $1 AND event_type = $2 ORDER BY id",
        match_id,
        "mentorbus.agreement.signed.v1",
    )
    fully = [json.loads(r["payload"])["data"]["fully_signed"] for r in found]
    assert fully == [False, False, True]
