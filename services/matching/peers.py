"""Peer runs: pairs of peers (role `both`) on a general, non-bipartite graph.

A pair's score is symmetric (the mean of each learning from the other) and allowed only if
the hard rules allow both directions. Each peer takes part in at most `capacity` pairs; a
pair is proposed once (never both directions) and never repeats an earlier pair.

Solving it exactly is a maximum-weight b-matching, an integer program:
    maximize sum_e w_e x_e  subject to  sum_{e at v} x_e <= b_v,  x_e in {0, 1}
solved exactly (see `solve_b_matching`: an LP relaxation by min-cost flow, rounded with
proof when it can be, else HiGHS' branch and cut). The LP relaxation alone is not enough
on a general graph (an odd cycle of half edges, e.g. three peers each "half paired"
with the other two, beats every real matching): that is exactly the error of treating peers
as a bipartite mentee x mentor problem, and why the integer solve is needed. Bipartite
min-cost flow stays the right tool for the other formats. Pure module: no I/O.
"""

import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from ortools.graph.python import min_cost_flow
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_matrix

from services.matching.explain import explain_peers
from services.matching.planner import Plan, Progress, Proposal, RunOptions, k_note
from services.matching.scoring import ScoringModel

SCALE = 1_000_000  # score units per 1.0: integer weights keep the optimum exact


class PeerSolverError(RuntimeError):
    """HiGHS did not prove an optimum (should not happen: the problem is always feasible)."""


@dataclass(frozen=True)
class PeerEdges:
    """Candidate peer pairs (a < b, as model rows) and their symmetric scores."""

    a: npt.NDArray[np.int32]
    b: npt.NDArray[np.int32]
    score: npt.NDArray[np.float32]

    def __len__(self) -> int:
        return int(self.a.shape[0])


def peer_columns(model: ScoringModel) -> npt.NDArray[np.int32]:
    """For each peer (model row) their column among the peers as mentors (-1: no places)."""
    return np.array(
        [model.index.column.get(p.enrollment_id, -1) for p in model.mentees], dtype=np.int32
    )


def symmetric_scores(model: ScoringModel, block: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Every pair's symmetric score and whether both directions are allowed (dense: peers
    x peers float32, 100 MB at 5,000 peers)."""
    cols = peer_columns(model)
    m = model.m
    score = np.zeros((m, m), dtype=np.float32)
    ok = np.zeros((m, m), dtype=np.bool_)
    has = cols >= 0
    for start in range(0, m, block):
        stop = min(start + block, m)
        s, allowed = model.score_block(start, stop)
        score[start:stop, has] = s[:, cols[has]]
        ok[start:stop, has] = allowed[:, cols[has]]
    score = (score + score.T) * np.float32(0.5)
    ok &= ok.T
    np.fill_diagonal(ok, False)
    return score, ok


def candidate_pairs(score: np.ndarray, ok: np.ndarray, k: int) -> PeerEdges:
    """Each peer's best `k` allowed partners, as one undirected edge list (a < b)."""
    m = score.shape[0]
    if m < 2:
        empty = np.zeros(0, dtype=np.int32)
        return PeerEdges(empty, empty.copy(), np.zeros(0, dtype=np.float32))
    masked = np.where(ok, score, np.float32(-1.0))
    k = min(k, m - 1)
    top = np.argpartition(-masked, k - 1, axis=1)[:, :k]
    rows = np.repeat(np.arange(m, dtype=np.int64), k)
    cols = top.ravel().astype(np.int64)
    keep = ok[rows, cols]
    a, b = np.minimum(rows, cols)[keep], np.maximum(rows, cols)[keep]
    keys = np.unique(a * m + b)
    a, b = (keys // m).astype(np.int32), (keys % m).astype(np.int32)
    return PeerEdges(a, b, score[a, b].astype(np.float32))


def solve_b_matching(
    n: int, capacity: npt.NDArray[np.integer], edges: PeerEdges, *, participation: bool = False
) -> npt.NDArray[np.intp]:
    """The indices of the edges of a maximum-weight b-matching, exactly (integer weights:
    scores at `SCALE` units, plus one unit per pair so that more pairs win ties; with
    `participation`, more pairs first, then the score).

    First the LP relaxation, as a min-cost flow on the bipartite double cover (each peer
    once as a giver, once as a taker; `x_uv = (f_uv + f_vu) / 2`, half-integral). When its
    half edges form only paths and even cycles, the better alternation of each is an
    integral matching worth at least the LP bound: optimal, proven. Only an odd cycle (or a
    peer in more than two half edges) needs the integer program (HiGHS branch and cut)."""
    if len(edges) == 0:
        return np.zeros(0, dtype=np.intp)
    weight = np.rint(edges.score.astype(np.float64) * SCALE).astype(np.int64) + 1
    if participation:
        weight += SCALE * (n + 1)
    caps = np.maximum(capacity, 0).astype(np.int64)
    x = _double_cover(n, caps, edges, weight)
    rounded = _round_half_edges(n, edges, weight, x)
    if rounded is not None:
        return rounded
    return _integer_program(n, caps, edges, weight)


def _double_cover(
    n: int, caps: npt.NDArray[np.int64], edges: PeerEdges, weight: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """2 x the LP relaxation's optimum per edge (0, 1 or 2), by min-cost flow."""
    e = len(edges)
    source, sink = 2 * n, 2 * n + 1
    givers, takers = np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64) + n
    a, b = edges.a.astype(np.int64), edges.b.astype(np.int64)
    tails = np.concatenate([np.full(n, source), a, b, takers, givers])
    heads = np.concatenate([givers, b + n, a + n, np.full(n, sink), np.full(n, sink)])
    capacities = np.concatenate([caps, np.ones(2 * e, dtype=np.int64), caps, caps])
    costs = np.concatenate([np.zeros(n, np.int64), -weight, -weight, np.zeros(2 * n, np.int64)])
    flow = min_cost_flow.SimpleMinCostFlow()
    arcs = flow.add_arcs_with_capacity_and_unit_cost(tails, heads, capacities, costs)
    flow.set_node_supply(source, int(caps.sum()))
    flow.set_node_supply(sink, -int(caps.sum()))
    if flow.solve() != flow.OPTIMAL:
        raise PeerSolverError("the relaxation's min-cost flow found no optimum")
    used = flow.flows(arcs[n : n + 2 * e])
    return np.asarray(used[:e] + used[e:], dtype=np.int64)


def _round_half_edges(
    n: int, edges: PeerEdges, weight: npt.NDArray[np.int64], x: npt.NDArray[np.int64]
) -> npt.NDArray[np.intp] | None:
    """The LP's full edges plus the better alternation of each path or even cycle of half
    edges; None if some component is an odd cycle or a peer has more than two half edges."""
    chosen: list[int] = [int(e) for e in np.flatnonzero(x == 2)]
    half = np.flatnonzero(x == 1)
    if len(half) == 0:
        return np.array(chosen, dtype=np.intp)
    at: dict[int, list[int]] = {}
    for e in half:
        at.setdefault(int(edges.a[e]), []).append(int(e))
        at.setdefault(int(edges.b[e]), []).append(int(e))
    if any(len(v) > 2 for v in at.values()):
        return None
    seen: set[int] = set()
    for start in sorted(at, key=lambda v: len(at[v])):  # path ends first
        if start in seen:
            continue
        walk: list[int] = []  # edges in order along the path or cycle
        node, came = start, -1
        while True:
            seen.add(node)
            nxt = [e for e in at[node] if e != came]
            if not nxt or (nxt[0] in walk):
                break
            came = nxt[0]
            walk.append(came)
            node = int(edges.b[came]) if int(edges.a[came]) == node else int(edges.a[came])
            if node == start:
                break
        cycle = node == start and len(walk) > 1
        if cycle and len(walk) % 2 == 1:
            return None
        odd, even = walk[0::2], walk[1::2]
        chosen += odd if weight[odd].sum() >= weight[even].sum() else even
    return np.array(sorted(chosen), dtype=np.intp)


def _integer_program(
    n: int, caps: npt.NDArray[np.int64], edges: PeerEdges, weight: npt.NDArray[np.int64]
) -> npt.NDArray[np.intp]:
    """The b-matching as an integer program, solved to optimality by HiGHS."""
    e = len(edges)
    incidence = csr_matrix(
        (np.ones(2 * e), (np.r_[edges.a, edges.b], np.r_[np.arange(e), np.arange(e)])),
        shape=(n, e),
    )
    result = milp(
        -weight.astype(np.float64),
        constraints=LinearConstraint(incidence, 0, caps.astype(np.float64)),
        integrality=np.ones(e),
        bounds=Bounds(0, 1),
        options={"mip_rel_gap": 0.0},
    )
    if result.status != 0 or result.x is None:
        raise PeerSolverError(f"HiGHS ended without an optimum: {result.message}")
    return np.flatnonzero(result.x > 0.5)


def plan_peers(model: ScoringModel, options: RunOptions, progress: Progress | None = None) -> Plan:
    """Pair the model's peers (rows; the same people as the index's columns) optimally."""
    report = progress or (lambda stage, fraction: None)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    report("scoring", 0.0)
    cols = peer_columns(model)
    capacity = np.where(
        cols >= 0, np.array([model.index.mentors[c].capacity for c in cols], dtype=np.int64), 0
    )
    score, ok = symmetric_scores(model)
    if options.min_score is not None:
        ok &= score >= options.min_score
    edges = candidate_pairs(score, ok, options.candidates_per_mentee)
    timings["scoring"] = time.perf_counter() - started

    report("solving", 0.0)
    started = time.perf_counter()
    chosen = solve_b_matching(
        model.m, capacity, edges, participation=options.objective == "max_participation"
    )
    timings["solving"] = time.perf_counter() - started

    report("explaining", 0.0)
    started = time.perf_counter()
    proposals = [
        Proposal(
            int(edges.a[e]),
            int(cols[edges.b[e]]),
            explain_peers(model.criteria, model.mentees[edges.a[e]], model.mentees[edges.b[e]]),
        )
        for e in chosen
    ]
    paired = np.zeros(model.m, dtype=np.int64)
    np.add.at(paired, edges.a[chosen], 1)
    np.add.at(paired, edges.b[chosen], 1)
    has_edges = np.zeros(model.m, dtype=np.bool_)
    has_edges[edges.a] = True
    has_edges[edges.b] = True
    free = capacity - paired
    unmatched = []
    for i in range(model.m):
        if paired[i] > 0:
            continue
        if capacity[i] <= 0:
            reason = "the peer has no open place"
        elif has_edges[i]:
            reason = "every allowed peer's places went to pairs that score higher"
        else:
            reason = "no peer is allowed (hard rules, earlier pairs or the score floor)"
        # A free partner it may pair with: that pair was not a candidate (else pairing them
        # would have raised the total), so K alone left this peer out.
        unmatched.append((i, reason + k_note(bool((ok[i] & (free > 0)).any()))))
    timings["explaining"] = time.perf_counter() - started
    return Plan(
        proposals=proposals,
        unmatched=unmatched,
        total_score=sum(p.explanation.score for p in proposals),
        candidate_edges=len(edges),
        timings=timings,
    )
