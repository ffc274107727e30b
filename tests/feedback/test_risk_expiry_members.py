"""At-risk reasons (circles included), request expiry and member rules, on a program whose
matches and sessions arrive as real events on the test broker (dated in the past, as a
long-running program's would be)."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from devstack.broker import Broker
from devstack.stack import Stack
from shared.events import (
    MatchAcceptedV1,
    MatchCreatedV1,
    PersonDeactivatedV1,
    ProgramCreatedV1,
    SessionCompletedV1,
    SessionParticipant,
)
from tests.feedback.support import envelope, produce
from tests.helpers import eventually, member

NOW = datetime.now(UTC)


def match(program_id: uuid.UUID, name: str, version: int, status: str) -> dict[str, Any]:
    return dict(
        match_id=uuid.uuid5(program_id, name), program_id=program_id, version=version,
        mentee_enrollment_id=uuid.uuid4(), mentor_enrollment_id=uuid.uuid4(),
        mentee_external_id=f"{name}-mentee", mentor_external_id=f"{name}-mentor", status=status,
        group_id=uuid.uuid5(program_id, "circle") if name.startswith("g") else None,
    )  # fmt: skip


def held(program_id: uuid.UUID, name: str, days_ago: int) -> SessionCompletedV1:
    return SessionCompletedV1(
        session_id=uuid.uuid4(), version=2, match_id=uuid.uuid5(program_id, name),
        program_id=program_id, starts_at=NOW - timedelta(days=days_ago), duration_minutes=30,
        status="completed",
        participants=[SessionParticipant(external_id=f"{name}-mentee", role="mentee"),
                      SessionParticipant(external_id=f"{name}-mentor", role="mentor")],
    )  # fmt: skip


async def test_at_risk_expiry_and_members(
    api: httpx.AsyncClient, broker: Broker, stack: Stack, org: tuple[str, dict[str, str]]
) -> None:
    org_id, key = org
    program_id = uuid.uuid4()
    long_ago = NOW - timedelta(days=40)
    events = [
        envelope(ProgramCreatedV1(program_id=program_id, version=1, name="Old", format="one_to_one",
                                  status="active"), org_id, at=long_ago),
    ]  # fmt: skip
    for name in ("x", "y", "z", "g1", "g2"):
        events.append(envelope(MatchCreatedV1(**match(program_id, name, 1, "proposed")), org_id,
                               at=long_ago))  # fmt: skip
        events.append(envelope(MatchAcceptedV1(**match(program_id, name, 2, "active")), org_id,
                               at=long_ago))  # fmt: skip
    recent, old = held(program_id, "y", 5), held(program_id, "z", 35)
    # A circle (g1, g2 share a mentor) met 3 days ago: the session names the circle, not a
    # match, and includes the mentor and every member.
    circle = held(program_id, "g1", 3).model_copy(update={
        "match_id": None, "group_id": uuid.uuid5(program_id, "circle"),
        "participants": [SessionParticipant(external_id="g-mentor", role="mentor"),
                         SessionParticipant(external_id="g1-mentee", role="member"),
                         SessionParticipant(external_id="g2-mentee", role="member")],
    })  # fmt: skip
    # x: never met; y: met 5 days ago; z: last met 35 days ago, asked for feedback then.
    events += [
        envelope(recent, org_id),
        envelope(old, org_id, at=old.starts_at),
        envelope(circle, org_id),
    ]
    await produce(broker, *events)

    async def requests(**params: str) -> list[dict[str, Any]]:
        response = await api.get("/v1/feedback-requests", params=params, headers=key)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    # z's requests were made 35 days ago and expired after 14.
    expired = await eventually(lambda: requests(status="expired", employee="z-mentee"))
    assert [r["session_id"] for r in expired] == [str(old.session_id)]
    assert await requests(status="pending", employee="z-mentee") == []
    late = await api.post(
        "/v1/feedback", json={"request_id": expired[0]["id"], "rating": 3}, headers=key
    )
    assert late.status_code == 409

    (y_request,) = await eventually(lambda: requests(status="pending", employee="y-mentee"))
    for who in ("g-mentor", "g1-mentee", "g2-mentee"):
        (asked,) = await eventually(lambda: requests(employee=who))  # noqa: B023
        assert asked["group_id"] == str(circle.group_id) and asked["match_id"] is None
    low = await api.post("/v1/feedback", json={"request_id": y_request["id"], "rating": 1},
                         headers=key)  # fmt: skip
    assert low.status_code == 201, low.text

    at_risk = await api.get(f"/v1/programs/{program_id}/at-risk", headers=key)
    assert at_risk.status_code == 200, at_risk.text
    reasons = {i["mentee_external_id"]: [r["code"] for r in i["reasons"]]
               for i in at_risk.json()["items"]}  # fmt: skip
    assert reasons == {
        "x-mentee": ["no_session_30_days"],
        "y-mentee": ["low_feedback"],
        "z-mentee": ["no_session_30_days"],
    }
    page = await api.get(f"/v1/programs/{program_id}/at-risk", params={"limit": 2}, headers=key)
    rest = await api.get(
        f"/v1/programs/{program_id}/at-risk",
        params={"limit": 2, "cursor": page.json()["next_cursor"]},
        headers=key,
    )
    assert len(page.json()["items"]) == 2 and len(rest.json()["items"]) == 1
    assert (await api.get(f"/v1/programs/{uuid.uuid4()}/at-risk", headers=key)).status_code == 404

    # A member: an end user signed in with their organization's token, through the gateway.
    y_match = str(uuid.uuid5(program_id, "y"))
    async with httpx.AsyncClient(
        base_url=stack.url(), headers=member(org_id, "y-mentee")
    ) as service:
        mine = await service.get("/v1/feedback-requests")
        assert {r["employee_external_id"] for r in mine.json()["items"]} == {"y-mentee"}
        assert (
            await service.get("/v1/feedback-requests", params={"employee": "x-mentee"})
        ).status_code == 403
        assert (await service.get(f"/v1/programs/{program_id}/at-risk")).status_code == 403
        assert (await service.get(f"/v1/programs/{program_id}/analytics")).status_code == 403
        others = await service.get(f"/v1/matches/{uuid.uuid5(program_id, 'x')}/check-ins")
        assert others.status_code == 404
        someone_else = await service.post(
            "/v1/feedback", json={"request_id": expired[0]["id"], "rating": 3}
        )
        assert someone_else.status_code == 404
        own = await service.post(f"/v1/matches/{y_match}/check-ins", json={"rating": 4})
        assert own.status_code == 201, own.text
        assert own.json()["employee_external_id"] == "y-mentee"
        as_other = await service.post(
            f"/v1/matches/{y_match}/check-ins",
            json={"employee_external_id": "y-mentor", "rating": 4},
        )
        assert as_other.status_code == 403
        goal = await service.post("/v1/goals", json={"match_id": y_match, "title": "Speak up"})
        assert goal.status_code == 201, goal.text
        assert [g["id"] for g in (await service.get("/v1/goals")).json()["items"]] == [
            goal.json()["id"]
        ]
    async with httpx.AsyncClient(
        base_url=stack.url(), headers=member(org_id, "x-mentee")
    ) as service:
        assert (await service.get(f"/v1/goals/{goal.json()['id']}")).status_code == 404
        assert (await service.get("/v1/goals")).json()["items"] == []

    # g2 leaves the organization: their pending request expires at once; g1's stays.
    leaver = PersonDeactivatedV1(
        person_id=uuid.uuid4(), external_id="g2-mentee", version=2, employment_status="inactive"
    )
    await produce(broker, envelope(leaver, org_id))
    (gone,) = await eventually(lambda: requests(status="expired", employee="g2-mentee"))
    assert gone["group_id"] == str(circle.group_id)
    late = await api.post("/v1/feedback", json={"request_id": gone["id"], "rating": 4}, headers=key)
    assert late.status_code == 409
    assert len(await requests(status="pending", employee="g1-mentee")) == 1
