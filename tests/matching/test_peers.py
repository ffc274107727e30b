"""Peer runs solve a maximum-weight b-matching on a general graph, exactly."""

import itertools
import random

import numpy as np

from services.matching.bmatching import (
    SCALE,
    CuttingPlanes,
    PeerEdges,
    double_cover,
    integer_program,
    round_half_edges,
    solve_b_matching,
)
from services.matching.scoring import Edges
from services.matching.solver import SolveOptions, solve


def brute_force(n: int, capacity: list[int], edges: PeerEdges) -> float:
    """The best total over every subset of edges that keeps each peer within capacity."""
    best = 0.0
    for size in range(len(edges) + 1):
        for subset in itertools.combinations(range(len(edges)), size):
            degree = [0] * n
            for e in subset:
                degree[edges.a[e]] += 1
                degree[edges.b[e]] += 1
            if all(d <= c for d, c in zip(degree, capacity, strict=True)):
                best = max(best, float(sum(edges.score[e] for e in subset)))
    return best


def edges_of(pairs: dict[tuple[int, int], float]) -> PeerEdges:
    a, b = zip(*pairs, strict=True)
    return PeerEdges(
        np.array(a, dtype=np.int32),
        np.array(b, dtype=np.int32),
        np.array(list(pairs.values()), dtype=np.float32),
    )


def test_b_matching_equals_brute_force_on_random_graphs() -> None:
    rng = random.Random(5)
    for _ in range(150):
        n = rng.randint(3, 7)
        pairs = {
            (i, j): round(rng.random(), 3)
            for i, j in itertools.combinations(range(n), 2)
            if rng.random() < 0.6
        }
        if not pairs or len(pairs) > 12:
            continue
        capacity = [rng.randint(0, 2) for _ in range(n)]
        edges = edges_of(pairs)
        chosen = solve_b_matching(n, np.array(capacity), edges)
        degree = np.bincount(np.r_[edges.a[chosen], edges.b[chosen]], minlength=n)
        assert (degree <= np.array(capacity)).all()
        total = float(edges.score[chosen].astype(np.float64).sum())
        assert abs(total - brute_force(n, capacity, edges)) < 1e-4


def test_a_bipartite_treatment_double_counts_an_odd_cycle() -> None:
    """Five peers, one place each: a 5-cycle of strong pairs and nothing else. The best real
    pairing keeps two pairs (one peer left out). Treating peers as mentees x mentors (each
    peer on both sides, the bipartite trick) 'pairs' all five around the cycle, each in two
    pairs at once, and claims five pairs' worth."""
    n = 5
    pairs = {(i, (i + 1) % n) if i < (i + 1) % n else ((i + 1) % n, i): 0.9 for i in range(n)}
    edges = edges_of(pairs)
    chosen = solve_b_matching(n, np.ones(n, dtype=np.int64), edges)
    assert len(chosen) == 2
    assert abs(float(edges.score[chosen].sum()) - brute_force(n, [1] * n, edges)) < 1e-6
    # The bipartite trick: both directions of every pair, every peer a mentee and a mentor.
    both = Edges(
        np.r_[edges.a, edges.b].astype(np.int32),
        np.r_[edges.b, edges.a].astype(np.int32),
        np.r_[edges.score, edges.score].astype(np.float32),
    )
    flow = solve(n, np.ones(n, dtype=np.int64), both, SolveOptions())
    assert len(flow.chosen) == 5  # every peer "in" two pairs: not a matching at all


def random_instance(rng: np.random.Generator, n: int) -> tuple[np.ndarray, PeerEdges]:
    """A random sparse graph with scores on a coarse grid (ties, odd cycles in the LP)."""
    pairs = {
        (i, j): float(rng.integers(1, 20)) / 20
        for i in range(n)
        for j in rng.choice(n, size=6, replace=False)
        if i < j
    }
    return rng.integers(1, 3, size=n), edges_of(pairs)


def weights(edges: PeerEdges) -> np.ndarray:
    return np.rint(edges.score.astype(np.float64) * SCALE).astype(np.int64) + 1


def test_cutting_planes_equal_the_plain_integer_program_on_medium_graphs() -> None:
    """Where the LP relaxation has odd cycles, the blossom cuts (with column generation
    over the working set) end on the same optimum as HiGHS' branch and cut over every edge,
    every cut holds at that optimum, and the branch and cut given the cuts agrees too."""
    rng = np.random.default_rng(18)
    through_cuts = 0
    for _ in range(40):
        n = int(rng.integers(30, 150))
        capacity, edges = random_instance(rng, n)
        weight = weights(edges)
        reference = integer_program(n, capacity, edges, weight)
        best = int(weight[reference].sum())
        chosen = solve_b_matching(n, capacity, edges)
        degree = np.bincount(np.r_[edges.a[chosen], edges.b[chosen]], minlength=n)
        assert (degree <= capacity).all()
        assert int(weight[chosen].sum()) == best
        x = double_cover(n, capacity, edges, weight)
        if round_half_edges(n, edges, weight, x) is not None:
            continue
        through_cuts += 1
        cutting = CuttingPlanes(n, capacity, edges, weight)
        exact = cutting.solve(x / 2)
        assert exact is not None
        assert int(weight[exact].sum()) == best
        assert cutting.cuts
        optimum = np.zeros(len(edges), dtype=np.bool_)
        optimum[reference] = True
        for cut in cutting.cuts:
            assert (cut.edges & optimum).sum() <= cut.rhs
        with_cuts = integer_program(n, capacity, edges, weight, cutting.cuts)
        assert int(weight[with_cuts].sum()) == best
    assert through_cuts >= 10  # the instances do exercise the cuts


def test_cuts_hold_for_every_b_matching_of_small_graphs() -> None:
    """Every cut found on small random graphs keeps every feasible subset of edges (brute
    force): the cuts never remove an integral b-matching."""
    rng = random.Random(7)
    checked = 0
    for _ in range(300):
        n = rng.randint(5, 8)
        pairs = {
            (i, j): round(rng.random(), 2)
            for i, j in itertools.combinations(range(n), 2)
            if rng.random() < 0.5
        }
        if not pairs or len(pairs) > 13:
            continue
        capacity = np.array([rng.randint(1, 2) for _ in range(n)])
        edges = edges_of(pairs)
        weight = weights(edges)
        x = double_cover(n, capacity, edges, weight)
        if round_half_edges(n, edges, weight, x) is not None:
            continue
        cutting = CuttingPlanes(n, capacity, edges, weight)
        cutting.solve(x / 2)
        for size in range(len(edges) + 1):
            for subset in itertools.combinations(range(len(edges)), size):
                picked = np.zeros(len(edges), dtype=np.bool_)
                picked[list(subset)] = True
                degree = np.bincount(np.r_[edges.a[picked], edges.b[picked]], minlength=n)
                if (degree <= capacity).all():
                    assert all((c.edges & picked).sum() <= c.rhs for c in cutting.cuts)
        checked += len(cutting.cuts)
    assert checked > 0
