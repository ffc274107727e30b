"""Peer runs: pairs of peers (role `both`) on a general, non-bipartite graph.

A pair's score is symmetric (the mean of each learning from the other) and allowed only if
the hard rules allow both directions. Each peer takes part in at most `capacity` pairs; a
pair is proposed once (never both directions) and never repeats an earlier pair.

Solving it exactly is a maximum-weight b-matching, an integer program:
    maximize sum_e w_e x_e  subject to  sum_{e at v} x_e <= b_v,  x_e in {0, 1}
solved exactly by `bmatching.solve_b_matching` (an LP relaxation by min-cost flow, rounded
with proof when it can be, else blossom cutting planes, else HiGHS' branch and cut). The LP
relaxation alone is not enough on a general graph (an odd cycle of half edges, e.g. three
peers each "half paired" with the other two, beats every real matching): that is exactly
the error of treating peers as a bipartite mentee x mentor problem, and why the integer
solve is needed. Bipartite min-cost flow stays the right tool for the other formats.
Pure module: no I/O.
"""

import time

import numpy as np
import numpy.typing as npt

from services.matching.bmatching import PeerEdges, solve_b_matching
from services.matching.explain import explain_peers
from services.matching.planner import Plan, Progress, Proposal, RunOptions, k_note
from services.matching.scoring import ScoringModel


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
