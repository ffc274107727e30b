"""Scores, breakdowns, reasons and hard rules on hand-made and random cases (no stack)."""

import uuid
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from services.matching.criteria import Criteria, Participant, preference_targets
from services.matching.explain import explain, explain_peers, hard_rule_violations
from services.matching.peers import symmetric_scores
from services.matching.scoring import MentorIndex, ScoringModel, top_k
from services.matching.skills import goal_skills, goals_to_skills, normalize_skill
from tests.matching.factories import random_people


def person(external_id: str, **fields: Any) -> Participant:
    """A participant with only what a test cares about."""
    return Participant(enrollment_id=uuid.uuid4(), external_id=external_id, **fields)


WEIGHTS = {"skills": 2, "goals": 1, "languages": 1, "time_zone": 1, "department": 0,
           "seniority": 0, "attributes": 0}  # fmt: skip


def test_skill_names_and_goals_normalize() -> None:
    assert normalize_skill("  Python 3 ") == "python"
    assert normalize_skill("Postgres") == normalize_skill("PostgreSQL") == "postgresql"
    assert normalize_skill("K8s") == "kubernetes"
    vocabulary = {"sql", "python", "public speaking"}
    assert goal_skills("Get better at public speaking and SQL", vocabulary) == [
        "public speaking",
        "sql",
    ]
    assert goal_skills("become a better public speaker", set()) == ["public speaking"]
    assert goal_skills("Learn Py", vocabulary) == ["python"]
    # A goal naming no known skill still counts, as a key of its own.
    assert goal_skills("Understand our pricing model", vocabulary) == [
        "understand our pricing model"
    ]
    assert goals_to_skills(["python", "Python 3", "sql"], vocabulary) == ("python", "sql")


def test_score_breakdown_and_reasons_on_a_hand_made_pair() -> None:
    criteria = Criteria.from_program({"weights": WEIGHTS})
    mentee = person(
        "E1", skills={"python": 2}, goals=("python", "sql"), languages=frozenset({"en"}),
        utc_offset=1.0,
    )  # fmt: skip
    strong = person(
        "M1", skills={"python": 5, "sql": 3}, languages=frozenset({"en", "de"}), utc_offset=1.0
    )
    partial = person("M2", skills={"python": 3}, languages=frozenset({"en"}), utc_offset=-5.0)

    best = explain(criteria, mentee, strong)
    # skills: python (5 vs 2) full, sql (3 vs 0) full -> 1; goals 2 of 2 -> 1; en shared -> 1;
    # same zone -> 1. Weights 2, 1, 1, 1 of 5.
    assert best.score == pytest.approx(1.0)
    lines = {c.criterion: c for c in best.breakdown}
    assert set(lines) == {"skills", "goals", "languages", "time_zone"}
    assert lines["skills"].weight == 2 and lines["skills"].contribution == pytest.approx(0.4)
    assert "shares 2 of 2 goal skills: python, sql" in best.reasons
    assert "speaks en with the mentee" in best.reasons

    other = explain(criteria, mentee, partial)
    lines = {c.criterion: c for c in other.breakdown}
    assert lines["skills"].value == pytest.approx(0.25)  # python (3-2)/2 = .5, sql 0
    assert lines["goals"].value == pytest.approx(0.5)
    assert lines["time_zone"].value == pytest.approx(1 - 6 / 12)
    expected = (2 * 0.25 + 1 * 0.5 + 1 * 1.0 + 1 * 0.5) / 5
    assert other.score == pytest.approx(expected)
    assert sum(c.contribution for c in other.breakdown) == pytest.approx(other.score)
    assert "shares 1 of 2 goal skills: python" in other.reasons
    assert "6 h apart in time zones" in other.reasons
    # The contribution order of the reasons: the biggest part first.
    assert other.reasons[0].startswith("speaks en")


def test_department_seniority_and_attribute_rules() -> None:
    criteria = Criteria.from_program(
        {
            "weights": {"skills": 0, "goals": 0, "languages": 0, "time_zone": 0,
                        "department": 1, "seniority": 1, "attributes": 1},
            "department_rule": "different",
            "seniority_gap": {"min_years": 3, "max_years": 10},
            "attribute_rules": [{"attribute": "location", "rule": "same", "weight": 1}],
        }
    )  # fmt: skip
    mentee = person("E", department="Sales", seniority=1.0, attributes={"location": "Berlin"})
    ideal = person("A", department="Engineering", seniority=6.0, attributes={"location": "berlin"})
    close = person("B", department="sales", seniority=2.5, attributes={"location": "Paris"})
    unknown = person("C")
    assert explain(criteria, mentee, ideal).score == pytest.approx(1.0)
    low = explain(criteria, mentee, close)
    lines = {c.criterion: c.value for c in low.breakdown}
    # Same department (case-insensitive) breaks "different"; 1.5 years is 1.5 short of 3.
    assert lines == pytest.approx({"department": 0.0, "seniority": 0.5, "attributes": 0.0})
    assert explain(criteria, mentee, unknown).score == pytest.approx(0.5)  # all neutral


def test_missing_or_malformed_criteria_fall_back_to_defaults() -> None:
    assert Criteria.from_program({}) == Criteria()
    odd = Criteria.from_program(
        {"weights": {"skills": "x", "goals": -1}, "department_rule": "sideways",
         "attribute_rules": [{"attribute": 3}], "seniority_gap": None}
    )  # fmt: skip
    assert odd.weights["skills"] == 0.35 and odd.weights["goals"] == 0.0
    assert odd.department_rule == "any" and odd.attribute_rules == ()
    assert set(Criteria().active()) == {"skills", "goals", "seniority", "languages", "time_zone"}


FULL = {
    "department_rule": "same",
    "seniority_gap": {"min_years": 2},
    "max_time_zone_difference_hours": 6,
    "attribute_rules": [{"attribute": "location", "rule": "different", "weight": 2}],
}


ANSWERS = {
    **FULL,
    "attribute_rules": [
        {"attribute": "location", "rule": "different", "weight": 2},
        {"attribute": "answers.industry", "rule": "same", "weight": 1},
        {"attribute": "answers.topics", "rule": "overlap", "weight": 3},
    ],
}


def test_intake_answers_are_criteria_of_their_own() -> None:
    criteria = Criteria.from_program(ANSWERS)
    assert {"answers.industry", "answers.topics", "attributes"} <= set(criteria.active())
    mentee = person("E", attributes={"answers.industry": "Retail", "answers.topics": ["ai"]})
    mentor = person("M", attributes={"answers.industry": "retail", "answers.topics": ["ai", "x"]})
    found = explain(criteria, mentee, mentor)
    lines = {c.criterion: c.value for c in found.breakdown}
    assert lines["answers.industry"] == 1.0 and lines["answers.topics"] == 1.0
    assert "both answered ai to topics" in found.reasons
    assert "same answer to industry (retail)" in found.reasons


@pytest.mark.parametrize(
    "raw",
    [
        {},
        FULL,
        {**FULL, "require_shared_language": True},
        ANSWERS,
        {"weights": {"preferences": 3}},
        {"weights": {k: 0 for k in WEIGHTS} | {"preferences": 1}},
        {"weights": {"preferences": 0}},
    ],
)
def test_vectorized_scores_equal_the_explained_ones(raw: dict[str, Any]) -> None:
    criteria = Criteria.from_program(raw)
    mentees, mentors = random_people(1, 40, 25)
    model = ScoringModel(MentorIndex(criteria, mentors), mentees)
    score, _ = model.score_block(0, len(mentees))
    for i in range(len(mentees)):
        for j in range(len(mentors)):
            assert score[i, j] == pytest.approx(
                explain(criteria, mentees[i], mentors[j]).score, abs=1e-5
            )


def test_preferences_score_the_share_of_stated_wishes_met() -> None:
    raw = {"preferences": {"department": "Engineering", "location": ["Berlin", "Remote"],
                           "languages": ["de-DE"], "favourite_colour": "blue",
                           "title": {"nested": 1}}}  # fmt: skip
    wants = preference_targets(raw["preferences"])
    assert wants == {
        "department": frozenset({"engineering"}),
        "location": frozenset({"berlin", "remote"}),
        "languages": frozenset({"de"}),
    }  # the unknown key and the malformed value are ignored
    criteria = Criteria.from_program({})
    mentee = person("E", preferences=wants)
    mentor = person("M", department="engineering", attributes={"location": "Remote"},
                    languages=frozenset({"en"}))  # fmt: skip
    found = explain(criteria, mentee, mentor)
    line = next(c for c in found.breakdown if c.criterion == "preferences")
    assert line.value == pytest.approx(2 / 3) and line.weight == pytest.approx(0.1)
    assert "meets 2 of 3 stated preferences (department, location)" in found.reasons
    # Weights are normalized with `preferences` only for a mentee who states some: one who
    # states none scores as if the criterion did not exist.
    assert "preferences" not in criteria.active()
    assert criteria.active(preferences=True)["preferences"] == pytest.approx(0.1 / 0.95)
    plain = explain(criteria, person("E"), mentor)
    assert "preferences" not in {c.criterion for c in plain.breakdown}
    missed = explain(criteria, person("E", preferences={"division": frozenset({"x"})}), mentor)
    assert "meets none of 1 stated preferences (division)" in missed.reasons


@pytest.mark.parametrize("raw", [{}, FULL, {**FULL, "require_shared_language": True}])
def test_hard_rules_are_never_broken(raw: dict[str, Any]) -> None:
    criteria = Criteria.from_program(raw)
    mentees, mentors = random_people(2, 60, 30)
    # A mentee who is also a mentor (role "both") must never get themselves.
    mentors.append(person(mentees[0].external_id, person_id=mentees[0].person_id, capacity=2))
    excluded = [(1, 2), (3, 4)]
    model = ScoringModel(MentorIndex(criteria, mentors), mentees, excluded)
    _, ok = model.score_block(0, len(mentees))
    for i, mentee in enumerate(mentees):
        for j, mentor in enumerate(mentors):
            allowed = (
                not hard_rule_violations(criteria, mentee, mentor)
                and mentor.capacity > 0
                and (i, j) not in excluded
            )
            assert ok[i, j] == allowed, (i, j, hard_rule_violations(criteria, mentee, mentor))
    edges = model.top_candidates(5, block=7)
    assert all(ok[i, j] for i, j in zip(edges.mentee, edges.mentor, strict=True))
    for i in range(len(mentees)):
        assert all(ok[i, j] for j, _ in model.suggest(i, 10))


def test_manager_chain_both_ways_and_self_are_excluded() -> None:
    criteria = Criteria()
    mentee = person("E", person_id=uuid.uuid4(), managers=frozenset({"BOSS", "BIGBOSS"}))
    mentors = [
        person("BOSS", capacity=1),
        person("BIGBOSS", capacity=1),
        person("REPORT", managers=frozenset({"E"}), capacity=1),
        person("E", person_id=mentee.person_id, capacity=1),
        person("PEER", capacity=1),
        person("FULL", capacity=0),
    ]
    model = ScoringModel(MentorIndex(criteria, mentors), [mentee])
    assert [mentors[j].external_id for j, _ in model.suggest(0, 10)] == ["PEER"]
    assert model.blocked_by(0) == {"at_capacity": 1, "self_manager_chain_or_already_matched": 4}


def test_top_k_is_exact_with_ties() -> None:
    rng = np.random.default_rng(5)
    score = (rng.integers(0, 20, size=(30, 300)) / 19).astype(np.float32)  # many ties
    ok = rng.random((30, 300)) > 0.3
    ok[3] = False  # a mentee with nobody allowed
    ok[4, :5] = True
    ok[4, 5:] = False  # fewer allowed than k
    rows, cols, vals = top_k(score, ok, 10)
    for r in range(30):
        allowed = np.flatnonzero(ok[r])
        expected = sorted(allowed, key=lambda c: (-score[r, c], c))[:10]
        assert list(cols[rows == r]) == expected
        assert list(vals[rows == r]) == [score[r, c] for c in expected]


def test_suggestions_are_ordered_best_first() -> None:
    mentees, mentors = random_people(3, 5, 40)
    model = ScoringModel(MentorIndex(Criteria(), mentors), mentees)
    for i in range(5):
        top = model.suggest(i, 10)
        scores = [s for _, s in top]
        assert scores == sorted(scores, reverse=True)
        allowed = model.score_block(i, i + 1)[1][0].sum()
        assert len(top) == min(10, allowed)


def test_goals_naming_no_skill_match_by_meaning() -> None:
    from services.matching.embeddings import EMBEDDER, closest_skills

    names = ["security", "sales", "machine learning", "statistics", "public speaking", "agile"]
    skills = EMBEDDER.skill_vectors(names)
    goals = [
        "protect our apps from attackers",
        "understand how neural networks work",
        "close bigger deals",
        "run effective sprint planning",
        "bake sourdough bread",
    ]
    vectors = EMBEDDER.embed(goals)
    assert skills is not None and vectors is not None, "the embedding model must load"
    assert closest_skills(vectors, names, skills) == [
        "security",
        "machine learning",
        "sales",
        "agile",
        None,  # close to nothing: stays a goal of its own
    ]


def test_peer_scores_with_preferences_on_one_side_equal_the_explained_ones() -> None:
    criteria = Criteria.from_program({"weights": {"preferences": 1}})
    people, _ = random_people(4, 16, 3)  # some state preferences, some do not
    peers = [replace(p, capacity=1) for p in people]
    score, _ = symmetric_scores(ScoringModel(MentorIndex(criteria, peers), peers))
    for i, a in enumerate(peers):
        for j, b in enumerate(peers):
            if i != j:
                found = explain_peers(criteria, a, b)
                assert score[i, j] == pytest.approx(found.score, abs=1e-5)
                assert found.score == pytest.approx(sum(c.contribution for c in found.breakdown))
