"""A cohort matching run, start to finish, on in-memory data: candidate edges, pinned
pairs, the optimal flow, explanations, and why each unmatched mentee is unmatched.

Pure module (no I/O): the service feeds it from its projection, the bench from random
profiles; both get the same plan and the same timings.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from services.matching.criteria import category_key
from services.matching.explain import Explanation
from services.matching.scoring import Edges, ScoringModel
from services.matching.solver import SolveOptions, solve

# Human wording of the hard rules `ScoringModel.blocked_by` counts.
_RULE_WORDS = {
    "at_capacity": "have no open place",
    "no_shared_language": "share no language",
    "time_zone_too_far": "are too many time zones away",
    "self_manager_chain_or_already_matched": (
        "are themselves, in their manager chain, excluded or matched with them before"
    ),
}


@dataclass(frozen=True)
class RunOptions:
    """A run's choices (see the solver for what each objective means)."""

    objective: str = "max_score"
    min_score: float | None = None
    one_mentee_per_department: bool = False
    candidates_per_mentee: int = 50
    pinned: tuple[tuple[int, int], ...] = ()  # (mentee row, mentor column), kept if allowed


@dataclass(frozen=True)
class Proposal:
    """One proposed pair with its explanation."""

    mentee: int
    mentor: int
    explanation: Explanation
    pinned: bool = False


@dataclass
class Plan:
    """The outcome of a run."""

    proposals: list[Proposal]
    unmatched: list[tuple[int, str]]
    total_score: float
    candidate_edges: int
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    objective_cost: int = 0


Progress = Callable[[str, float], None]


def _department_codes(model: ScoringModel) -> np.ndarray:
    seen: dict[str, int] = {}
    codes = [
        -1 if (key := category_key(p.department)) is None else seen.setdefault(key, len(seen))
        for p in model.mentees
    ]
    return np.array(codes, dtype=np.int32)


def plan_cohort(model: ScoringModel, options: RunOptions, progress: Progress | None = None) -> Plan:
    """Pair the model's mentees with its mentors as well as the options allow."""
    report = progress or (lambda stage, fraction: None)
    timings: dict[str, float] = {}
    warnings: list[str] = []
    started = time.perf_counter()

    report("scoring", 0.0)
    edges = model.top_candidates(
        options.candidates_per_mentee, progress=lambda f: report("scoring", f)
    )
    timings["scoring"] = time.perf_counter() - started

    capacity = np.array([p.capacity for p in model.index.mentors], dtype=np.int64)
    capacity = np.maximum(capacity, 0)
    departments = _department_codes(model)
    pinned: dict[int, int] = {}
    for i, j in options.pinned:
        mentee, mentor = model.mentees[i], model.index.mentors[j]
        label = f"{mentee.enrollment_id} -> {mentor.enrollment_id}"
        _, ok = model.score_block(i, i + 1)
        if i in pinned:
            warnings.append(f"pinned pair {label} ignored: the mentee is pinned twice")
        elif not ok[0, j]:
            warnings.append(f"pinned pair {label} ignored: it breaks a hard rule")
        elif capacity[j] <= 0:
            warnings.append(f"pinned pair {label} ignored: the mentor has no open place")
        else:
            pinned[i] = j
            capacity[j] -= 1
    if pinned:
        # Pinned mentees are out of the flow, and with the department rule their
        # (mentor, department) place is taken too.
        keep = ~np.isin(edges.mentee, np.fromiter(pinned, dtype=np.int32))
        if options.one_mentee_per_department:
            taken = {(j, departments[i]) for i, j in pinned.items() if departments[i] >= 0}
            dept = departments[edges.mentee]
            keep &= np.array(
                [(int(j), int(d)) not in taken for j, d in zip(edges.mentor, dept, strict=True)],
                dtype=np.bool_,
            )
        edges = Edges(edges.mentee[keep], edges.mentor[keep], edges.score[keep])

    report("solving", 0.0)
    started = time.perf_counter()
    solution = solve(
        model.m,
        capacity,
        edges,
        SolveOptions(options.objective, options.min_score, options.one_mentee_per_department),
        departments,
    )
    timings["solving"] = time.perf_counter() - started

    report("explaining", 0.0)
    started = time.perf_counter()
    pairs = [(i, j, True) for i, j in pinned.items()] + [
        (int(edges.mentee[e]), int(edges.mentor[e]), False) for e in solution.chosen
    ]
    proposals = [
        Proposal(i, j, model.explain(i, j), is_pinned) for i, j, is_pinned in sorted(pairs)
    ]
    matched = {p.mentee for p in proposals}
    has_edges = np.zeros(model.m, dtype=np.bool_)
    has_edges[edges.mentee] = True
    free = capacity.copy()
    np.subtract.at(free, [p.mentor for p in proposals if not p.pinned], 1)
    left = [i for i in range(model.m) if i not in matched]
    by_k = cut_by_k(model, left, free > 0)
    unmatched = [
        (i, _why_unmatched(model, i, bool(has_edges[i]), options) + k_note(i in by_k)) for i in left
    ]
    timings["explaining"] = time.perf_counter() - started
    return Plan(
        proposals=proposals,
        unmatched=unmatched,
        total_score=sum(p.explanation.score for p in proposals),
        candidate_edges=len(edges),
        warnings=warnings,
        timings=timings,
        objective_cost=solution.cost,
    )


K_NOTE = (
    "; only because of the candidate limit: an allowed mentor outside this mentee's "
    "`candidates_per_mentee` best still has a free place (raise it to include them)"
)


def k_note(only_by_k: bool) -> str:
    """What a reason adds when the mentee was left unmatched only because of K."""
    return K_NOTE if only_by_k else ""


def cut_by_k(model: ScoringModel, rows: list[int], free: np.ndarray, block: int = 64) -> set[int]:
    """Unmatched mentees left out only because of K: an allowed mentor still has a free
    place after the solve. Were that pair among the candidates, matching it would have
    raised the objective, so the optimum over all pairs differs exactly there."""
    found: set[int] = set()
    for start in range(0, len(rows), block):
        chunk = rows[start : start + block]
        for r in chunk:
            _, ok = model.score_block(r, r + 1)
            if (ok[0] & free).any():
                found.add(r)
    return found


def _why_unmatched(model: ScoringModel, row: int, had_candidates: bool, options: RunOptions) -> str:
    if model.index.n == 0:
        return "the program has no active mentor"
    if had_candidates:
        rule = (
            " or already have a mentee from the same department"
            if options.one_mentee_per_department
            else ""
        )
        return "every allowed mentor's places went to mentees who fit them better" + rule
    blocked = model.blocked_by(row)
    parts = [f"{count} {_RULE_WORDS.get(name, name)}" for name, count in blocked.items()]
    detail = ": of the program's mentors, " + "; ".join(parts) if parts else ""
    return f"no mentor is allowed{detail}"
