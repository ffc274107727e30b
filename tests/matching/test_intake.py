"""Intake questions end to end: a program asks, enrollments answer (422 naming
`answers.<key>` when an answer does not fit), and matching weighs the answers."""

import uuid
from typing import Any

import httpx

from tests.helpers import eventually
from tests.matching.conftest import Org

QUESTIONS = [
    {"key": "industry", "prompt": "Your industry?", "type": "single_choice",
     "options": ["Retail", "Banking"], "required": True},
    {"key": "topics", "prompt": "Topics?", "type": "multi_choice",
     "options": ["ai", "cloud", "sales"]},
    {"key": "confidence", "prompt": "How confident are you?", "type": "scale"},
    {"key": "about", "prompt": "Anything else?", "type": "text"},
]  # fmt: skip


async def test_intake_questions_validate_answers_and_weigh_in_matching(
    api: httpx.AsyncClient, org: Org
) -> None:
    _, key = org
    tag = uuid.uuid4().hex[:6]
    for name in ("e", "a", "b"):
        put = await api.put(
            f"/v1/employees/{tag}-{name}",
            json={"email": f"{tag}-{name}@acme.com", "time_zone": "Europe/Paris"},
            headers=key,
        )
        assert put.status_code in (200, 201), put.text
    bad_question = await api.post(
        "/v1/programs",
        json={"name": "x", "questions": [{"key": "k", "prompt": "?", "type": "single_choice"}]},
        headers=key,
    )
    assert bad_question.status_code == 422
    assert bad_question.json()["errors"][0]["field"].startswith("questions.0")
    made = await api.post(
        "/v1/programs",
        json={
            "name": f"Intake {tag}",
            "status": "open",
            "max_mentees_per_mentor": 2,
            "questions": QUESTIONS,
            "criteria": {
                "attribute_rules": [
                    {"attribute": "answers.industry", "rule": "same", "weight": 1},
                    {"attribute": "answers.topics", "rule": "overlap", "weight": 2},
                ]
            },
        },
        headers=key,
    )
    assert made.status_code == 201, made.text
    assert made.json()["questions"][0]["key"] == "industry"
    pid = made.json()["id"]
    base = f"/v1/programs/{pid}/enrollments"

    async def enroll(who: str, role: str, answers: dict[str, Any]) -> httpx.Response:
        body: dict[str, Any] = {"employee_external_id": f"{tag}-{who}", "role": role}
        body["answers"] = answers
        if role == "mentor":
            body["skills"] = [{"name": "SQL", "level": 5}]
        else:
            body["goals"] = ["sql"]
        return await api.post(base, json=body, headers=key)

    refused = await enroll(
        "e",
        "mentee",
        {"industry": "Farming", "topics": "ai", "confidence": 7, "about": 3, "colour": "red"},
    )
    assert refused.status_code == 422, refused.text
    assert {e["field"] for e in refused.json()["errors"]} == {
        "answers.industry", "answers.topics", "answers.confidence", "answers.about",
        "answers.colour",
    }  # fmt: skip
    missing = await enroll("e", "mentee", {"topics": ["ai"]})
    assert missing.status_code == 422
    assert [e["field"] for e in missing.json()["errors"]] == ["answers.industry"]

    mentee = await enroll("e", "mentee", {"industry": "Retail", "topics": ["ai"], "confidence": 2})
    assert mentee.status_code == 201, mentee.text
    assert mentee.json()["answers"]["topics"] == ["ai"]
    close = await enroll("a", "mentor", {"industry": "Retail", "topics": ["ai", "cloud"]})
    far = await enroll("b", "mentor", {"industry": "Banking", "topics": ["sales"]})
    assert close.status_code == 201 and far.status_code == 201
    patch = await api.patch(
        f"{base}/{far.json()['id']}", json={"answers": {"topics": ["golf"]}}, headers=key
    )
    assert patch.status_code == 422
    assert {e["field"] for e in patch.json()["errors"]} == {"answers.topics", "answers.industry"}

    url = f"{base}/{mentee.json()['id']}/suggestions"

    async def both_projected() -> list[dict[str, Any]] | None:
        found = await api.get(url, headers=key)
        items: list[dict[str, Any]] = found.json().get("items", []) if found.is_success else []
        return items if len(items) == 2 else None

    items = await eventually(both_projected)
    assert items is not None
    assert [i["mentor_enrollment_id"] for i in items] == [close.json()["id"], far.json()["id"]]
    best = {c["criterion"]: c["value"] for c in items[0]["breakdown"]}
    assert best["answers.industry"] == 1.0 and best["answers.topics"] == 1.0
    worst = {c["criterion"]: c["value"] for c in items[1]["breakdown"]}
    assert worst["answers.industry"] == 0.0 and worst["answers.topics"] == 0.0
    assert "both answered ai to topics" in items[0]["reasons"]
