"""Cohort assignment as a min-cost flow (OR-Tools `SimpleMinCostFlow`, integer costs).

Network: source -> each mentee (capacity 1) -> a candidate mentor (one arc per candidate
edge, cost = -score) -> sink (capacity = the mentor's open places). Every mentee also has
a "stays unmatched" arc straight to the sink, so the flow is always feasible and leaving
someone out is a priced choice. Objectives and side rules become costs and nodes:

- `max_score`: maximize the total score.
- `max_participation`: match as many mentees as possible, then maximize the score
  (the unmatched arc costs more than any score difference can pay back).
- fairness floor (`min_score`): a mentee ending below the floor, or unmatched, costs a
  penalty larger than any score difference, so the number of such mentees is minimized
  first; only then does the total score count.
- at most one mentee per department per mentor: mentee -> (mentor, department) node with
  capacity 1 -> mentor. Still a flow network, so still solved exactly.

The result is exactly optimal on the candidate graph for the integer costs (scores scaled
to integers). Pure module: no I/O.
"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from ortools.graph.python import min_cost_flow

from services.matching.scoring import Edges

I64 = npt.NDArray[np.int64]
# OR-Tools scales costs by (nodes + 1) internally and refuses ranges that could overflow.
_COST_LIMIT = 2**62
DEFAULT_SCALE = 1_000_000


class SolverError(RuntimeError):
    """The solver could not find an optimal flow (should not happen: the flow is always
    feasible thanks to the unmatched arcs)."""


@dataclass(frozen=True)
class SolveOptions:
    """What the assignment optimizes and which side rules it keeps."""

    objective: str = "max_score"  # max_score | max_participation
    min_score: float | None = None  # fairness floor
    one_per_department: bool = False


@dataclass(frozen=True)
class Costs:
    """Integer costs of one problem: per edge, and for leaving a mentee unmatched."""

    edge: I64
    unmatched: int
    scale: int


def integer_costs(edges: Edges, n_mentees: int, n_nodes: int, options: SolveOptions) -> Costs:
    """The integer costs the flow minimizes; lexicographic priorities become big weights.

    Scores are in [0, 1]; at `scale` units per 1.0 a total over n mentees stays below
    (n + 1) * scale, which is what each higher priority must outweigh. Every match also
    earns one unit so that, between equal totals, more mentees are matched.
    """
    n1 = n_mentees + 1
    floor_steps = n1 if options.min_score is not None else 0
    # Cost magnitude as a multiple of `scale`: the score, then the floor, then participation.
    floor_mult = n1 if options.min_score is not None else 0
    big_mult = n1 * (floor_mult + 1) if options.objective == "max_participation" else 0
    top = max(1, floor_mult + big_mult + 1)
    scale = int(min(DEFAULT_SCALE, _COST_LIMIT // (top * (n_nodes + 1) * 4)))
    if scale < 100:
        raise SolverError("problem too large for exact integer costs")
    floor = floor_steps * scale
    edge = -(np.rint(edges.score.astype(np.float64) * scale).astype(np.int64) + 1)
    if options.min_score is not None:
        edge = edge + np.where(edges.score < options.min_score, floor, 0).astype(np.int64)
    unmatched = floor + big_mult * scale
    return Costs(edge=edge, unmatched=int(unmatched), scale=scale)


@dataclass(frozen=True)
class Solution:
    """Which candidate edges the optimal flow uses, and its integer cost."""

    chosen: npt.NDArray[np.intp]  # indices into the edges
    cost: int
    costs: Costs


def solve(
    n_mentees: int,
    capacity: npt.NDArray[np.integer],
    edges: Edges,
    options: SolveOptions,
    department: npt.NDArray[np.int32] | None = None,
) -> Solution:
    """Assign mentees to mentors over the candidate `edges`, optimally.

    `capacity[j]` is mentor j's open places; `department[i]` is mentee i's department code
    (-1 unknown: no department rule applies), needed with `one_per_department`.
    """
    n_mentors = int(capacity.shape[0])
    source, sink = 0, 1
    mentee_node = 2 + np.arange(n_mentees, dtype=np.int64)
    mentor_node = 2 + n_mentees + np.arange(n_mentors, dtype=np.int64)
    next_node = 2 + n_mentees + n_mentors

    heads = mentor_node[edges.mentor]
    extra_tails: list[I64] = []
    extra_heads: list[I64] = []
    if options.one_per_department and department is not None and len(edges):
        dept = department[edges.mentee].astype(np.int64)
        grouped = dept >= 0
        width = int(department.max(initial=0)) + 1
        key = edges.mentor[grouped].astype(np.int64) * width + dept[grouped]
        slots, inverse = np.unique(key, return_inverse=True)
        slot_node = next_node + np.arange(len(slots), dtype=np.int64)
        next_node += len(slots)
        heads = heads.copy()
        heads[grouped] = slot_node[inverse]
        extra_tails.append(slot_node)
        extra_heads.append(mentor_node[slots // width])

    costs = integer_costs(edges, n_mentees, next_node, options)
    tails = np.concatenate(
        [
            np.full(n_mentees, source, dtype=np.int64),
            mentee_node,
            mentee_node[edges.mentee],
            *extra_tails,
            mentor_node,
        ]
    )
    all_heads = np.concatenate(
        [
            mentee_node,
            np.full(n_mentees, sink, dtype=np.int64),
            heads,
            *extra_heads,
            np.full(n_mentors, sink, dtype=np.int64),
        ]
    )
    n_extra = sum(len(t) for t in extra_tails)
    capacities = np.concatenate(
        [
            np.ones(2 * n_mentees + len(edges) + n_extra, dtype=np.int64),
            np.maximum(capacity.astype(np.int64), 0),
        ]
    )
    unit_costs = np.concatenate(
        [
            np.zeros(n_mentees, dtype=np.int64),
            np.full(n_mentees, costs.unmatched, dtype=np.int64),
            costs.edge,
            np.zeros(n_extra + n_mentors, dtype=np.int64),
        ]
    )
    flow = min_cost_flow.SimpleMinCostFlow()
    arcs = flow.add_arcs_with_capacity_and_unit_cost(tails, all_heads, capacities, unit_costs)
    flow.set_node_supply(source, n_mentees)
    flow.set_node_supply(sink, -n_mentees)
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise SolverError(f"min-cost flow ended with status {status}")
    first_edge = 2 * n_mentees
    used = flow.flows(arcs[first_edge : first_edge + len(edges)])
    return Solution(chosen=np.nonzero(used)[0], cost=int(flow.optimal_cost()), costs=costs)


def greedy(n_mentees: int, capacity: npt.NDArray[np.integer], edges: Edges) -> npt.NDArray[np.intp]:
    """Best edge first while places last: the baseline the solver is measured against."""
    open_places = capacity.astype(np.int64).copy()
    taken = np.zeros(n_mentees, dtype=np.bool_)
    chosen = []
    for e in np.argsort(-edges.score, kind="stable"):
        i, j = edges.mentee[e], edges.mentor[e]
        if not taken[i] and open_places[j] > 0:
            taken[i] = True
            open_places[j] -= 1
            chosen.append(e)
    return np.array(chosen, dtype=np.intp)
