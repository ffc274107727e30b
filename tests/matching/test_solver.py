"""The cohort solver against brute force, and the run planner's options (no stack)."""

import itertools
import random
import uuid

import numpy as np
import pytest

from services.matching.criteria import Criteria, Participant
from services.matching.explain import hard_rule_violations
from services.matching.planner import RunOptions, plan_cohort
from services.matching.scoring import Edges, MentorIndex, ScoringModel
from services.matching.solver import SolveOptions, greedy, solve
from tests.matching.factories import random_people


def brute_force(
    n_mentees: int,
    capacity: list[int],
    edges: Edges,
    edge_cost: np.ndarray,
    unmatched_cost: int,
    department: list[int] | None,
) -> int:
    """The cheapest assignment by trying every one (mentee -> one candidate or nobody)."""
    options: list[list[tuple[int, int]]] = [[(-1, unmatched_cost)] for _ in range(n_mentees)]
    for e in range(len(edges)):
        options[int(edges.mentee[e])].append((int(edges.mentor[e]), int(edge_cost[e])))
    best = None
    for choice in itertools.product(*options):
        used = [0] * len(capacity)
        seen: set[tuple[int, int]] = set()
        fine = True
        for i, (j, _) in enumerate(choice):
            if j < 0:
                continue
            used[j] += 1
            if department is not None and department[i] >= 0:
                if (j, department[i]) in seen:
                    fine = False
                seen.add((j, department[i]))
        if fine and all(u <= c for u, c in zip(used, capacity, strict=True)):
            total = sum(cost for _, cost in choice)
            best = total if best is None else min(best, total)
    assert best is not None
    return best


CASES = [
    SolveOptions(),
    SolveOptions(objective="max_participation"),
    SolveOptions(min_score=0.45),
    SolveOptions(objective="max_participation", min_score=0.45),
    SolveOptions(one_per_department=True),
    SolveOptions(objective="max_participation", min_score=0.45, one_per_department=True),
]


@pytest.mark.parametrize("options", CASES, ids=lambda o: repr(o)[13:-1])
@pytest.mark.parametrize("seed", range(12))
def test_flow_optimum_equals_brute_force(options: SolveOptions, seed: int) -> None:
    rng = random.Random(seed)
    n_mentees, n_mentors = rng.randint(3, 7), rng.randint(1, 3)
    capacity = [rng.randint(0, 2) for _ in range(n_mentors)]
    pairs = [(i, j) for i in range(n_mentees) for j in range(n_mentors) if rng.random() < 0.7]
    edges = Edges(
        np.array([i for i, _ in pairs], dtype=np.int32),
        np.array([j for _, j in pairs], dtype=np.int32),
        np.array([rng.choice([0.0, 0.2, 0.5, 0.7, 0.9, 1.0]) for _ in pairs], dtype=np.float32),
    )
    department = [rng.choice([-1, 0, 0, 1]) for _ in range(n_mentees)]
    solution = solve(
        n_mentees, np.array(capacity), edges, options, np.array(department, dtype=np.int32)
    )
    optimum = brute_force(
        n_mentees,
        capacity,
        edges,
        solution.costs.edge,
        solution.costs.unmatched,
        department if options.one_per_department else None,
    )
    chosen = solution.chosen
    unmatched = n_mentees - len(chosen)
    assert solution.cost == optimum
    assert int(solution.costs.edge[chosen].sum()) + unmatched * solution.costs.unmatched == optimum
    # The solution itself is a valid assignment.
    assert len(set(edges.mentee[chosen].tolist())) == len(chosen)
    load = np.bincount(edges.mentor[chosen], minlength=n_mentors)
    assert (load <= np.array(capacity)).all()
    if options.one_per_department:
        slots = [(int(edges.mentor[e]), department[edges.mentee[e]]) for e in chosen]
        slots = [s for s in slots if s[1] >= 0]
        assert len(slots) == len(set(slots))


def test_participation_first_then_score() -> None:
    # Mentee 0 fits both mentors, mentee 1 only mentor 0 (one place each).
    edges = Edges(
        np.array([0, 0, 1], dtype=np.int32),
        np.array([0, 1, 0], dtype=np.int32),
        np.array([0.9, 0.1, 0.5], dtype=np.float32),
    )
    by_score = solve(2, np.array([1, 1]), edges, SolveOptions())
    by_reach = solve(2, np.array([1, 1]), edges, SolveOptions(objective="max_participation"))
    # By score 0.9 alone beats 0.1 + 0.5, so mentee 1 stays out; by participation both go.
    assert sorted(by_score.chosen.tolist()) == [0]
    assert sorted(by_reach.chosen.tolist()) == [1, 2]


def test_fairness_floor_trades_score_for_nobody_below_it() -> None:
    # Without a floor mentee 0 takes the great fit and mentee 1 is left a poor one.
    edges = Edges(
        np.array([0, 0, 1, 1], dtype=np.int32),
        np.array([0, 1, 0, 1], dtype=np.int32),
        np.array([1.0, 0.45, 0.5, 0.1], dtype=np.float32),
    )
    plain = solve(2, np.array([1, 1]), edges, SolveOptions())
    fair = solve(2, np.array([1, 1]), edges, SolveOptions(min_score=0.4))
    assert sorted(plain.chosen.tolist()) == [0, 3]  # 1.1 in total, but one mentee at 0.1
    assert sorted(fair.chosen.tolist()) == [1, 2]  # 0.95 in total; both at least 0.4


def test_flow_beats_greedy() -> None:
    edges = Edges(
        np.array([0, 0, 1], dtype=np.int32),
        np.array([0, 1, 0], dtype=np.int32),
        np.array([0.9, 0.85, 0.8], dtype=np.float32),
    )
    optimal = solve(2, np.array([1, 1]), edges, SolveOptions())
    assert float(edges.score[optimal.chosen].sum()) == pytest.approx(1.65)
    assert float(edges.score[greedy(2, np.array([1, 1]), edges)].sum()) == pytest.approx(0.9)


def participant(external_id: str, **fields: object) -> Participant:
    return Participant(enrollment_id=uuid.uuid4(), external_id=external_id, **fields)  # type: ignore[arg-type]


def test_planner_total_equals_brute_force_over_all_pairs() -> None:
    criteria = Criteria.from_program({"department_rule": "different"})
    for seed in range(5):
        mentees, mentors = random_people(seed, 6, 3)
        model = ScoringModel(MentorIndex(criteria, mentors), mentees)
        plan = plan_cohort(model, RunOptions(candidates_per_mentee=10))
        score, ok = model.score_block(0, model.m)
        best = 0.0
        choices = [[-1, *np.flatnonzero(ok[i]).tolist()] for i in range(model.m)]
        for choice in itertools.product(*choices):
            used = np.bincount([j for j in choice if j >= 0], minlength=3)
            if all(used[j] <= mentors[j].capacity for j in range(3)):
                total = sum(float(score[i, j]) for i, j in enumerate(choice) if j >= 0)
                best = max(best, total)
        assert plan.total_score == pytest.approx(best, abs=1e-4)
        for p in plan.proposals:
            assert not hard_rule_violations(criteria, mentees[p.mentee], mentors[p.mentor])
        load = np.bincount([p.mentor for p in plan.proposals], minlength=3)
        assert all(load[j] <= mentors[j].capacity for j in range(3))
        assert {p.mentee for p in plan.proposals}.isdisjoint(i for i, _ in plan.unmatched)
        assert len(plan.proposals) + len(plan.unmatched) == model.m


def test_pinned_forbidden_and_unmatched_reasons() -> None:
    criteria = Criteria()
    en = frozenset({"en"})
    mentees = [
        participant("A", skills={}, goals=("python",), languages=en),
        participant("B", goals=("python",), languages=en),
        participant("C", goals=("python",), languages=frozenset({"ja"})),
        participant("D", goals=("python",), languages=en, managers=frozenset({"M2"})),
    ]
    mentors = [
        participant("M1", skills={"python": 5}, languages=en, capacity=1),
        participant("M2", skills={"python": 2}, languages=en, capacity=1),
    ]
    index = MentorIndex(criteria, mentors)
    # Pin A to the weaker mentor, forbid B with the stronger one.
    model = ScoringModel(index, mentees, excluded=[(1, 0)])
    plan = plan_cohort(model, RunOptions(pinned=((0, 1), (2, 0))))
    pairs = {(mentees[p.mentee].external_id, mentors[p.mentor].external_id) for p in plan.proposals}
    assert ("A", "M2") in pairs and ("B", "M1") not in pairs
    assert any("pinned pair" in w and "hard rule" in w for w in plan.warnings)  # C speaks ja
    reasons = {mentees[i].external_id: why for i, why in plan.unmatched}
    assert "share no language" in reasons["C"]
    assert ("D", "M1") in pairs
    # B's only allowed mentor (M2, since M1 is forbidden for B) went to A's pin.
    assert "places went to" in reasons["B"]


def test_empty_cohorts_plan_cleanly() -> None:
    mentees, mentors = random_people(4, 3, 2)
    no_mentors = plan_cohort(ScoringModel(MentorIndex(Criteria(), []), mentees), RunOptions())
    assert no_mentors.proposals == [] and len(no_mentors.unmatched) == 3
    assert all(why == "the program has no active mentor" for _, why in no_mentors.unmatched)
    no_mentees = plan_cohort(ScoringModel(MentorIndex(Criteria(), mentors), []), RunOptions())
    assert no_mentees.proposals == [] and no_mentees.unmatched == []
    assert no_mentees.total_score == 0
