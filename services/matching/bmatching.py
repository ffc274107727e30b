"""Maximum-weight b-matching on a general (non-bipartite) graph, exactly. Pure module.

    maximize sum_e w_e x_e  subject to  sum_{e at v} x_e <= b_v,  x_e in {0, 1}

Weights are integers, so "exact" means the proven integer optimum. In order of cost:
1. The LP relaxation as a min-cost flow on the bipartite double cover (half-integral). If
   its half edges form only paths and even cycles, rounding them is optimal, proven.
2. Otherwise (odd cycles of half edges) cutting planes: blossom inequalities
   x(E(S)) + x(T) <= floor((b(S) + |T|) / 2) for an odd set S and T in the cut of S
   (valid for every integral b-matching: the degrees in S sum to at most b(S)), added to
   the LP until it is integral. The LP is solved by HiGHS on a working set of edges (the
   flow's support and the edges at the odd sets); every other edge is priced with the
   duals and joins when it could raise the total (column generation), so the final LP is
   the optimum over every edge. An integral optimum of a relaxation with valid cuts is
   the integer optimum.
3. If that does not settle in `CUT_ROUNDS` rounds, or for the `participation` objective:
   HiGHS branch and cut over every edge (with the cuts found so far).
"""

from dataclasses import dataclass

import highspy
import numpy as np
import numpy.typing as npt
from ortools.graph.python import min_cost_flow
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix, csr_matrix, vstack
from scipy.sparse.csgraph import connected_components

SCALE = 1_000_000  # score units per 1.0: integer weights keep the optimum exact
CUT_ROUNDS = 500  # each round is one warm re-solve (hundredths of a second at 5,000 peers)
EPS = 1e-6  # a value this close to 0 or 1 is integral
START_PER_PEER = 4  # the working LP starts with each peer's heaviest edges
ENTERING = 2_000  # edges priced in per round at most
PRICE_EPS = 1e-4  # reduced costs in weight units (a real improvement is worth >= 1)


class PeerSolverError(RuntimeError):
    """A solver did not prove an optimum (should not happen: the problem is always feasible)."""


@dataclass(frozen=True)
class PeerEdges:
    """Candidate peer pairs (a < b, as model rows) and their symmetric scores."""

    a: npt.NDArray[np.int32]
    b: npt.NDArray[np.int32]
    score: npt.NDArray[np.float32]

    def __len__(self) -> int:
        return int(self.a.shape[0])


@dataclass(frozen=True)
class Cut:
    """A blossom inequality: the edges it counts (a mask over every edge) <= rhs."""

    edges: npt.NDArray[np.bool_]
    rhs: int


def solve_b_matching(
    n: int, capacity: npt.NDArray[np.integer], edges: PeerEdges, *, participation: bool = False
) -> npt.NDArray[np.intp]:
    """The indices of the edges of a maximum-weight b-matching, exactly (integer weights:
    scores at `SCALE` units, plus one unit per pair so that more pairs win ties; with
    `participation`, more pairs first, then the score)."""
    if len(edges) == 0:
        return np.zeros(0, dtype=np.intp)
    weight = np.rint(edges.score.astype(np.float64) * SCALE).astype(np.int64) + 1
    if participation:
        weight += SCALE * (n + 1)
    caps = np.maximum(capacity, 0).astype(np.int64)
    x = double_cover(n, caps, edges, weight)
    rounded = round_half_edges(n, edges, weight, x)
    if rounded is not None:
        return rounded
    if participation:
        # Pair counts weigh SCALE x n times a score unit: beyond an LP's tolerances, so the
        # warm re-solves lose their basis and price in noise (minutes). Lexicographic phases
        # (count, then score) would fix it; until then the integer program, as before.
        return integer_program(n, caps, edges, weight)
    cutting = CuttingPlanes(n, caps, edges, weight)
    exact = cutting.solve(x / 2)
    if exact is not None:
        return exact
    return integer_program(n, caps, edges, weight, cutting.cuts)


def double_cover(
    n: int, caps: npt.NDArray[np.int64], edges: PeerEdges, weight: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """2 x the LP relaxation's optimum per edge (0, 1 or 2), by min-cost flow: each peer
    once as a giver, once as a taker; `x_uv = (f_uv + f_vu) / 2`."""
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


def round_half_edges(
    n: int, edges: PeerEdges, weight: npt.NDArray[np.int64], x: npt.NDArray[np.int64]
) -> npt.NDArray[np.intp] | None:
    """The LP's full edges plus the better alternation of each path or even cycle of half
    edges (worth at least the LP bound, so optimal); None if some component is an odd
    cycle or a peer has more than two half edges."""
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


class CuttingPlanes:
    """The LP relaxation with blossom cuts, by HiGHS' simplex on a working set of edges
    (column generation), re-solved warm after each added cut or edge."""

    def __init__(
        self, n: int, caps: npt.NDArray[np.int64], edges: PeerEdges, weight: npt.NDArray[np.int64]
    ) -> None:
        self.n, self.caps, self.weight = n, caps, weight
        self.a, self.b = edges.a.astype(np.int64), edges.b.astype(np.int64)
        self.cuts: list[Cut] = []
        self.columns = np.zeros(0, dtype=np.int64)  # working set: LP column -> edge
        self.highs = highspy.Highs()
        self.highs.setOptionValue("output_flag", False)
        inf = highspy.kHighsInf
        none = np.zeros(0, dtype=np.int32)
        self.highs.addRows(
            n,
            np.full(n, -inf),
            caps.astype(np.float64),
            0,
            np.zeros(n, np.int32),
            none,
            np.zeros(0),
        )

    def solve(self, start: npt.NDArray[np.float64]) -> npt.NDArray[np.intp] | None:
        """The optimal edges, proven by the LP with cuts over every edge; None if it is not
        integral within `CUT_ROUNDS` rounds (cuts found so far stay in `cuts`)."""
        x = start
        cuts = self._separate(x)
        self._add_cuts(cuts)
        touched = np.zeros(self.n, dtype=np.bool_)
        for cut in cuts:
            touched[self.a[cut.edges]] = touched[self.b[cut.edges]] = True
        self._add_columns(
            np.flatnonzero((x > EPS) | touched[self.a] | touched[self.b] | self._best_at_each())
        )
        for _ in range(CUT_ROUNDS):
            x, entering = self._lp()
            if len(entering):
                self._add_columns(entering)
                continue
            cuts = self._separate(x)
            if not cuts:
                break
            self._add_cuts(cuts)
        else:
            return None
        if ((x > EPS) & (x < 1 - EPS)).any():
            return None
        return np.flatnonzero(x > 0.5)

    def _lp(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """Solve the working LP: x over every edge, and the edges whose reduced cost says
        they could raise the total (HiGHS minimizes -w, so those with negative ones)."""
        self.highs.run()
        if self.highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            raise PeerSolverError(f"HiGHS LP: {self.highs.getModelStatus()}")
        solution = self.highs.getSolution()
        x = np.zeros(len(self.weight))
        x[self.columns] = np.asarray(solution.col_value)
        dual = np.asarray(solution.row_dual)  # <= 0 for rows of a minimization
        reduced = -self.weight - dual[self.a] - dual[self.b]
        for k, cut in enumerate(self.cuts):
            reduced[cut.edges] -= dual[self.n + k]
        reduced[self.columns] = 0.0
        entering = np.flatnonzero(reduced < -PRICE_EPS)
        # Partial pricing: the most promising edges only, so the working set stays small.
        return x, entering[np.argsort(reduced[entering], kind="stable")[:ENTERING]]

    def _best_at_each(self) -> npt.NDArray[np.bool_]:
        """The `START_PER_PEER` heaviest edges at each peer (a mask over every edge)."""
        ends = np.r_[self.a, self.b]
        order = np.lexsort((-np.r_[self.weight, self.weight], ends))
        first = np.searchsorted(ends[order], np.arange(self.n))
        rank = np.arange(len(order)) - np.repeat(first, np.diff(np.r_[first, len(order)]))
        best = np.zeros(len(self.weight), dtype=np.bool_)
        best[order[rank < START_PER_PEER] % len(self.weight)] = True
        return best

    def _add_columns(self, new: npt.NDArray[np.int64]) -> None:
        """Add edges to the working LP, with their coefficients in every row and cut."""
        new = np.setdiff1d(new, self.columns)
        if len(new) == 0:
            return
        rows = [self.a[new], self.b[new]]
        cols = [np.arange(len(new)), np.arange(len(new))]
        for k, cut in enumerate(self.cuts):
            inside = np.flatnonzero(cut.edges[new])
            rows.append(np.full(len(inside), self.n + k))
            cols.append(inside)
        matrix = csr_matrix(
            (np.ones(sum(len(r) for r in rows)), (np.concatenate(cols), np.concatenate(rows))),
            shape=(len(new), self.n + len(self.cuts)),
        )  # one row per new column: its column-wise entries
        cost = -self.weight[new].astype(np.float64)
        self.highs.addCols(
            len(new), cost, np.zeros(len(new)), np.ones(len(new)), matrix.nnz,
            matrix.indptr[:-1].astype(np.int32), matrix.indices.astype(np.int32), matrix.data,
        )  # fmt: skip
        self.columns = np.r_[self.columns, new]

    def _add_cuts(self, cuts: list[Cut]) -> None:
        """Add cuts as rows over the working set's columns."""
        for cut in cuts:
            local = np.flatnonzero(cut.edges[self.columns]).astype(np.int32)
            self.highs.addRow(
                -highspy.kHighsInf, float(cut.rhs), len(local), local, np.ones(len(local))
            )
            self.cuts.append(cut)

    def _separate(self, x: npt.NDArray[np.float64]) -> list[Cut]:
        """Violated blossom inequalities: S = each connected set of fractional edges (an
        odd cycle of half edges, typically), T = its cut's edges above one half, with the
        one nearest a half switched if b(S) + |T| would be even (then nothing is cut)."""
        n, a, b = self.n, self.a, self.b
        frac = np.flatnonzero((x > EPS) & (x < 1 - EPS))
        if len(frac) == 0:
            return []
        graph = coo_matrix((np.ones(len(frac)), (a[frac], b[frac])), shape=(n, n))
        _, label = connected_components(graph, directed=False)
        cuts = []
        for component in np.unique(label[a[frac]]):
            inside = label == component
            crossing = np.flatnonzero((inside[a] != inside[b]) & (x > EPS))
            chosen = x[crossing] > 0.5
            if (self.caps[inside].sum() + chosen.sum()) % 2 == 0:
                if len(crossing) == 0:
                    continue
                nearest = np.argmin(np.abs(x[crossing] - 0.5))
                chosen[nearest] = not chosen[nearest]
            mask = inside[a] & inside[b]
            mask[crossing[chosen]] = True
            rhs = int(self.caps[inside].sum() + chosen.sum()) // 2
            if x[mask].sum() > rhs + EPS:
                cuts.append(Cut(mask, rhs))
        return cuts


def integer_program(
    n: int,
    caps: npt.NDArray[np.int64],
    edges: PeerEdges,
    weight: npt.NDArray[np.int64],
    cuts: list[Cut] | None = None,
) -> npt.NDArray[np.intp]:
    """The b-matching as an integer program over every edge (with any valid cuts as extra
    rows), solved to optimality by HiGHS' branch and cut."""
    e = len(edges)
    incidence = csr_matrix(
        (np.ones(2 * e), (np.r_[edges.a, edges.b], np.r_[np.arange(e), np.arange(e)])),
        shape=(n, e),
    )
    upper = caps.astype(np.float64)
    if cuts:
        rows = csr_matrix(np.vstack([c.edges for c in cuts]).astype(np.float64))
        incidence = vstack([incidence, rows]).tocsr()
        upper = np.r_[upper, [float(c.rhs) for c in cuts]]
    result = milp(
        -weight.astype(np.float64),
        constraints=LinearConstraint(incidence, 0, upper),
        integrality=np.ones(e),
        bounds=Bounds(0, 1),
        options={"mip_rel_gap": 0.0},
    )
    if result.status != 0 or result.x is None:
        raise PeerSolverError(f"HiGHS ended without an optimum: {result.message}")
    return np.flatnonzero(result.x > 0.5)
