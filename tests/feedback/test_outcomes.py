"""Outcome analytics through the gateway, checked against figures computed by hand on a
small organization: an effective-dated HRIS history of leavers and promotions (and a
corrected state), participants from real matches, a comparison group, tracks and
agreements; then the people events redelivered and reordered on the real broker change
nothing."""

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from devstack.broker import Broker
from shared.events import CloudEvent, PersonDeactivatedV1, PersonUpsertedV1
from shared.events.people import PersonHistoryEntry
from tests.feedback.setup_matches import active_match, employees, enrol, get_when_ready, program
from tests.feedback.support import Connect, envelope, produce, rows
from tests.helpers import eventually

Org = tuple[str, dict[str, str]]
START, END = date(2025, 1, 1), date(2026, 1, 1)  # the program's starts_on and ends_on


def person(external_id: str, day: str, level: int, department: str, **more: Any) -> dict[str, Any]:
    return {
        "external_id": external_id, "effective_date": day, "job_level": level,
        "department": department, **more,
    }  # fmt: skip


# First states (people joined before the program, except P3 and C5).
FIRST = [
    person("P1", "2024-01-01", 2, "Eng"),
    person("P2", "2023-01-01", 5, "Sales"),
    person("P3", "2025-03-01", 1, "Eng"),  # hired after starts_on
    person("P4", "2022-01-01", 4, "Eng"),
    person("C1", "2020-01-01", 2, "Eng"),
    person("C2", "2021-01-01", 3, "Sales"),
    person("C3", "2019-01-01", 3, "Eng"),
    person("C4", "2020-01-01", 3, "Marketing"),  # no participant's department
    person("C5", "2025-02-01", 1, "Eng"),  # not employed on starts_on
    person("C6", "2021-06-01", 3, "Sales"),
    person("N1", "2020-01-01", 2, "Eng"),  # enrolled, never matched
]
LEFT = {"employment_status": "inactive"}
# Later states, each batch in date order per person.
LATER = [
    [
        person("P1", "2025-06-01", 3, "Eng"),
        person("P2", "2025-05-01", 5, "Sales", **LEFT),
        person("P3", "2025-09-01", 2, "Eng"),
        person("C1", "2025-03-01", 3, "Eng"),
        person("C2", "2025-02-15", 3, "Sales", **LEFT),
        person("C3", "2025-10-01", 3, "Eng", **LEFT),
        person("C6", "2025-04-01", 4, "Sales"),  # wrong: corrected below
    ],
    [
        person("C1", "2025-11-01", 4, "Eng"),
        person("C6", "2025-04-01", 2, "Sales"),  # the correction: a demotion, same date
        person("P4", "2021-01-01", 3, "Eng"),  # older than P4's current state: history only
    ],
]


def days(start: date, stop: date) -> int:
    return (stop - start).days


# By hand. Window: 2025-01-01 .. 2026-01-01 inclusive, so a full year is 366 days.
FULL = days(START, END) + 1
EXPECTED_RETENTION = {
    # participants employed on starts_on: P1, P2, P4 (P3 was hired later)
    # comparison (never enrolled, employed on starts_on, in Eng or Sales): C1, C2, C3, C6
    "months_3": {"participants": (3, 3), "comparison": (3, 4)},  # C2 left in February
    "months_6": {"participants": (2, 3), "comparison": (3, 4)},  # P2 left in May
    "months_12": {"participants": (2, 3), "comparison": (2, 4)},  # C3 left in October
}
PARTICIPANT_DAYS = (
    FULL  # P1
    + days(START, date(2025, 5, 1))  # P2 until leaving
    + days(date(2025, 3, 1), END)
    + 1  # P3 from hiring
    + FULL  # P4
)
COMPARISON_DAYS = (
    FULL  # C1
    + days(START, date(2025, 2, 15))  # C2
    + days(START, date(2025, 10, 1))  # C3
    + FULL  # C6
)
EXPECTED_PROMOTIONS = {
    "participants": (2, PARTICIPANT_DAYS),  # P1 2->3, P3 1->2
    "comparison": (2, COMPARISON_DAYS),  # C1 2->3->4; C6's 3->2 is no promotion
}


async def sync(api: httpx.AsyncClient, key: dict[str, str], batch: list[dict[str, Any]]) -> None:
    await employees(api, key, batch)


def check(figures: dict[str, Any]) -> None:
    assert figures["groups"]["participants"]["count"] == 4
    assert figures["groups"]["comparison"]["count"] == 4
    assert figures["groups"]["participants"]["departments"] == ["Eng", "Sales"]
    for horizon, groups in EXPECTED_RETENTION.items():
        for name, (count, of) in groups.items():
            got = figures["retention"][horizon][name]
            assert (got["count"], got["of"]) == (count, of), (horizon, name, got)
            assert got["rate"] == round(count / of, 4)
    for name, (count, person_days) in EXPECTED_PROMOTIONS.items():
        got = figures["promotions"][name]
        person_years = person_days / 365.25
        assert got["count"] == count, (name, got)
        assert got["person_years"] == round(person_years, 4), (name, got, person_days)
        assert got["per_100_person_years"] == round(100 * count / person_years, 2)
    network = figures["network"]
    # P1 (Eng) with P2 (Sales): across; P3 with P4: both Eng.
    assert network["cross_department_match_share"] == 0.5
    assert (network["cross_department_matches"], network["matches_with_departments"]) == (1, 2)
    assert (network["departments_linked"], network["department_pairs"]) == (2, 1)
    assert set(figures["definitions"]) >= {"retention", "promotions", "network", "tracks",
                                          "agreements", "comparison", "participants"}  # fmt: skip


def state_of(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in figures.items() if k != "as_of"}


async def test_outcomes_match_hand_computed_figures_under_redelivery_and_reordering(
    api: httpx.AsyncClient, org: Org, broker: Broker, service_db: Connect
) -> None:
    org_id, key = org
    await sync(api, key, FIRST)
    program_id = await program(api, key, starts_on=START.isoformat(), ends_on=END.isoformat())
    track = await api.post(
        f"/v1/programs/{program_id}/tracks",
        json={"name": "T", "modules": [{"title": "Only", "steps": [
            {"id": "a", "kind": "task", "title": "A", "completed_by": "mentee"},
            {"id": "b", "kind": "task", "title": "B", "completed_by": "mentor"}]}]},
        headers=key,
    )  # fmt: skip
    assert track.status_code == 201
    await api.put(
        f"/v1/programs/{program_id}/agreement-template", json={"cadence": "Weekly"}, headers=key
    )
    enrolled = {x: await enrol(api, key, program_id, x, r) for x, r in
                [("P1", "mentee"), ("P2", "mentor"), ("P3", "mentee"), ("P4", "mentor"),
                 ("N1", "mentee")]}  # fmt: skip
    first = await active_match(api, key, program_id, enrolled["P1"], enrolled["P2"])
    second = await active_match(api, key, program_id, enrolled["P3"], enrolled["P4"])
    await get_when_ready(api, key, f"/v1/matches/{second}/track")
    await get_when_ready(api, key, f"/v1/matches/{second}/agreement")
    for step, who in (("a", "P1"), ("b", "P2")):
        done = await api.post(
            f"/v1/matches/{first}/track/steps/{step}/complete",
            json={"employee_external_id": who},
            headers=key,
        )
        assert done.status_code == 200, done.text
    track_view = done.json()
    for who in ("P1", "P2"):
        signed = await api.post(
            f"/v1/matches/{first}/agreement/sign", json={"employee_external_id": who}, headers=key
        )
    agreement = signed.json()
    assert agreement["status"] == "signed"
    for batch in LATER:
        await sync(api, key, batch)

    path = f"/v1/programs/{program_id}/outcomes"

    async def settled() -> dict[str, Any] | None:
        answer = await api.get(path, headers=key)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        try:
            check(body)
        except AssertionError:
            return None
        return body

    figures = await eventually(settled, timeout=60)
    assert figures is not None

    # Tracks and agreements: one of the two matches finished its module and signed.
    started = datetime.fromisoformat(track_view["started_on"]).replace(tzinfo=UTC)
    finished = datetime.fromisoformat(track_view["completed_at"])
    assert figures["tracks"] == {
        "completion_rate": 0.5, "completed": 1, "with_track": 2,
        "median_days_per_module": round((finished - started) / timedelta(days=1), 2),
        "modules_completed": 1,
    }  # fmt: skip
    to_sign = datetime.fromisoformat(agreement["signed_at"]) - datetime.fromisoformat(
        agreement["created_at"]
    )
    assert figures["agreements"] == {
        "signed_share": 0.5, "signed": 1, "drafted": 2,
        "median_days_to_sign": round(to_sign / timedelta(days=1), 2),
    }  # fmt: skip

    # Redelivered and reordered: every person event of C6 and P1 again, newest first, twice
    # (the stale level-4 state of C6 arrives after its correction), then a real change of
    # C6 after the window as a marker that the consumer got past them all.
    replay = []
    for external_id in ("C6", "P1"):
        found = await _person_events(service_db, api, key, external_id)
        replay += list(reversed(found)) * 2
    await produce(broker, *replay)
    await sync(api, key, [person("C6", "2026-06-01", 2, "Sales", title="Lead")])

    async def marker_seen() -> bool:
        found = await rows(
            service_db,
            "SELECT 1 FROM person_history WHERE org_id = $1 AND external_id = 'C6'"
            " AND effective_date = '2026-06-01'",
            org_id,
        )
        return bool(found)

    await eventually(marker_seen, timeout=60)
    after = (await api.get(path, headers=key)).json()
    check(after)
    assert state_of(after) == state_of(figures)

    csv_answer = await api.get(path, headers={**key, "Accept": "text/csv"})
    assert csv_answer.headers["content-type"].startswith("text/csv")
    lines = csv_answer.text.splitlines()
    assert lines[0] == "section,figure,group,value,count,of"
    assert "retention,months_6,participants,0.6667,2,3" in lines
    assert "retention,months_12,comparison,0.5,2,4" in lines


async def _person_events(
    service_db: Connect, api: httpx.AsyncClient, key: dict[str, str], external_id: str
) -> list[CloudEvent]:
    """The person's events as profiles published them (from its outbox), oldest first."""
    person_id = (await api.get(f"/v1/employees/{external_id}", headers=key)).json()["id"]
    conn = await service_db("profiles")
    try:
        found = await conn.fetch(
            "SELECT payload FROM outbox_message WHERE key = $1 ORDER BY id", person_id
        )
    finally:
        await conn.close()
    return [CloudEvent.model_validate_json(r["payload"]) for r in found]


async def test_person_history_projection_when_events_first_arrive_out_of_order(
    stack: Any, broker: Broker, org: Org, service_db: Connect
) -> None:
    """A person's states produced newest first (and one twice) still give each entry the
    right end date and previous level, which the figures read."""
    org_id, _ = org
    person_id = uuid.uuid4()

    def event(version: int, day: date, level: int, status: str = "active") -> CloudEvent:
        entry = PersonHistoryEntry(
            effective_date=day, employment_status=status, job_level=level, department="Ops"
        )
        model = PersonDeactivatedV1 if status == "inactive" else PersonUpsertedV1
        data = model(
            person_id=person_id, external_id="Z-1", version=version, job_level=level,
            effective_date=day, employment_status=status, department="Ops",
            history_entry=entry,
        )  # fmt: skip
        return envelope(data, org_id)

    hired = event(1, date(2024, 1, 1), 1)
    promoted = event(2, date(2025, 3, 1), 2)
    left = event(3, date(2025, 8, 1), 2, "inactive")
    await produce(broker, left, promoted, left, hired)

    async def projected() -> list[dict[str, Any]]:
        found = await rows(
            service_db,
            "SELECT effective_date, employment_status, job_level, next_date, prev_job_level"
            " FROM person_history WHERE person_id = $1 ORDER BY effective_date",
            person_id,
        )
        return found if len(found) == 3 and found[0]["next_date"] is not None else []

    found = await eventually(projected)
    assert [tuple(r.values()) for r in found] == [
        (date(2024, 1, 1), "active", 1, date(2025, 3, 1), None),
        (date(2025, 3, 1), "active", 2, date(2025, 8, 1), 1),
        (date(2025, 8, 1), "inactive", 2, None, 2),
    ]
