"""Matching at enterprise scale: scoring, exact min-cost flow, explanations, suggestions.

    .venv/bin/python bench/matching.py              # 1,000x400, 5,000x2,000, 20,000x8,000
    .venv/bin/python bench/matching.py 2000x800     # other sizes (mentees x mentors)
    .venv/bin/python bench/matching.py --service    # also the service's own run, end to end
    .venv/bin/python bench/matching.py --formats    # top-K loss table, peer run, group run
    .venv/bin/python bench/matching.py --peer [--mip-baseline]   # the 5,000-peer run only

Each cohort (capacity 3; random but realistic profiles: skewed skill popularity, a few star
mentors everybody wants, an org chart, several languages and time zones) is built as
projection rows and goes through the service's own code: pool, run model, planner. Printed
per cohort: the wall time split into preparing (rows -> participants), scoring, solving and
explaining; total score and matched count; the ratio to a greedy baseline and to SciPy's
exact `min_weight_full_bipartite_matching` on the same candidate graph (expanded to one
column per mentor place) in the same run; and top-10 suggestions latency for one mentee
from the in-memory projection. `--service` also loads the rows into a throwaway PostgreSQL
database and times the matching service's run worker end to end (load, compute, store)
and suggestions through the use case with a warm pool cache.
"""

import asyncio
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scipy.optimize import linprog
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from services.matching import domain, runs
from services.matching.bmatching import SCALE, integer_program, solve_b_matching
from services.matching.models import ProgramProjection
from services.matching.peers import candidate_pairs, plan_peers, symmetric_scores
from services.matching.planner import K_NOTE, RunOptions, plan_cohort
from services.matching.pool import EnrollmentRecord, PersonRecord, build_pool
from services.matching.scoring import ScoringModel
from services.matching.solver import SolveOptions, greedy, integer_costs

CAPACITY = 3
K = 50
SKILLS = [
    "Python", "SQL", "Java", "JavaScript", "TypeScript", "Go", "Rust", "C++", "Kubernetes",
    "Cloud", "Machine Learning", "Data Analytics", "Statistics", "Security", "Architecture",
    "DevOps", "React", "PostgreSQL", "User Experience", "Product Management",
    "Project Management", "Agile", "Public Speaking", "Leadership", "People Management",
    "Negotiation", "Communication", "Stakeholder Management", "Coaching",
    "Career Development", "Strategic Thinking", "Finance", "Sales", "Marketing", "Recruiting",
    "Data Visualization", "Testing", "Mobile", "Networking", "Linux",
]  # fmt: skip
# How people phrase goals: free text, other spellings.
PHRASINGS = {
    "Python": ["get better at python3", "Py"], "PostgreSQL": ["Postgres tuning"],
    "Public Speaking": ["become a better public speaker", "presentation skills"],
    "Leadership": ["leading teams"], "Kubernetes": ["learn k8s"], "Machine Learning": ["ML"],
    "People Management": ["managing people"], "JavaScript": ["modern JS"],
}  # fmt: skip
ZONES = [("Europe/London", 10), ("Europe/Berlin", 25), ("Africa/Cairo", 6),
         ("America/New_York", 20), ("America/Los_Angeles", 12), ("America/Chicago", 6),
         ("Asia/Kolkata", 10), ("Asia/Singapore", 5), ("Asia/Tokyo", 3),
         ("Australia/Brisbane", 3)]  # fmt: skip
DEPARTMENTS = ["Engineering", "Sales", "Marketing", "Finance", "Product", "Design", "Data",
               "Operations", "Legal", "People", "Support", "Security"]  # fmt: skip
LOCATIONS = ["Berlin", "London", "New York", "San Francisco", "Bangalore", "Singapore",
             "Paris", "Toronto"]  # fmt: skip
CRITERIA = {
    "department_rule": "different",
    "max_time_zone_difference_hours": 9,
    "attribute_rules": [{"attribute": "location", "rule": "same", "weight": 1.0}],
}
MIGRATIONS = Path(__file__).resolve().parents[1] / "services" / "matching" / "migrations"
RUN_OPTIONS: dict[str, Any] = {"objective": "max_score", "candidates_per_mentee": K}

Rows = tuple[ProgramProjection, dict[str, PersonRecord], list[EnrollmentRecord]]


def _languages(rng: random.Random) -> list[str]:
    roll = rng.random()
    if roll < 0.04:
        return [rng.choice(["ja", "pt-BR", "zh"])]
    if roll < 0.35:
        return ["en", rng.choice(["de", "fr", "es", "hi", "it"])]
    return ["en-US" if roll < 0.6 else "en-GB"]


def make_rows(
    n_mentees: int, n_mentors: int, seed: int = 7, format: str = "one_to_one", capacity: int = 0
) -> Rows:
    """A program's projection rows: people in an org chart and their enrollments (for a
    peer program: everybody enrolls as `both`, with skills to share and goals)."""
    capacity = capacity or CAPACITY
    rng = random.Random(seed)
    org = uuid.uuid4()  # fresh ids: the service's pool cache outlives one database
    popularity = [1.0 / (r + 1) ** 0.8 for r in range(len(SKILLS))]
    zones, zone_weights = [z for z, _ in ZONES], [w for _, w in ZONES]
    today = date.today()
    program = ProgramProjection(
        id=uuid.uuid4(), org_id=org, version=1, name="Bench",
        format=format, status="open", max_mentees_per_mentor=capacity, criteria=CRITERIA,
    )  # fmt: skip
    people: dict[str, PersonRecord] = {}
    enrollments: list[EnrollmentRecord] = []

    def add(external_id: str, manager: str | None, years: float) -> PersonRecord:
        person = PersonRecord(
            id=uuid.uuid4(),
            external_id=external_id,
            department=rng.choice(DEPARTMENTS),
            division=None,
            title=None,
            time_zone=rng.choices(zones, zone_weights)[0],
            languages=_languages(rng),
            manager_external_id=manager,
            hire_date=today - timedelta(days=int(years * 365.25)),
            employment_status="active",
            attributes={"location": rng.choice(LOCATIONS)},
            version=1,
        )
        people[external_id] = person
        return person

    def enroll(person: PersonRecord, role: str, skills: dict[str, int], goals: list[str]) -> None:
        enrollments.append(
            EnrollmentRecord(
                id=uuid.uuid4(), person_id=person.id, employee_external_id=person.external_id,
                version=1, role=role, skills=[{"name": n, "level": lv} for n, lv in skills.items()],
                goals=goals, languages=[], capacity=capacity if role != "mentee" else None,
                status="active",
            )
        )  # fmt: skip

    for j in range(n_mentors):
        star = rng.random() < 0.05  # wanted by everybody: many skills, all high
        names = set(
            rng.choices(SKILLS, popularity, k=rng.randint(8, 12) if star else rng.randint(3, 7))
        )
        skills = {n: rng.randint(4, 5) if star else rng.randint(2, 5) for n in names}
        boss = f"M{rng.randrange(j)}" if j else None  # mentors form the org chart
        enroll(add(f"M{j}", boss, rng.uniform(2, 25)), "mentor", skills, [])
    for i in range(n_mentees):
        wants = set(rng.choices(SKILLS, popularity, k=rng.randint(1, 4)))
        goals = [rng.choice(PHRASINGS.get(g, [g])) for g in wants]
        has = {n: rng.randint(1, 3) for n in rng.sample(SKILLS, rng.randint(1, 4))}
        # Peers (no mentors) form the org chart among themselves.
        boss = (
            f"M{rng.randrange(n_mentors)}" if n_mentors else (f"E{rng.randrange(i)}" if i else None)
        )
        person = add(f"E{i}", boss, rng.uniform(0, 8))
        if format == "peer":
            has.update({n: rng.randint(3, 5) for n in rng.sample(SKILLS, rng.randint(1, 3))})
        enroll(person, "both" if format == "peer" else "mentee", has, goals)
    return program, people, enrollments


def scipy_optimum(
    model: ScoringModel, mentee: np.ndarray, mentor: np.ndarray, cost: np.ndarray, unmatched: int
) -> tuple[int, int, int, float]:
    """SciPy's exact assignment on the capacity-expanded graph.

    One column per mentor place plus one "unmatched" column per mentee; weights are the
    solver's own integer costs shifted positive (SciPy needs every row matched). Returns
    (cost, matched, integer score units, seconds).
    """
    m = model.m
    capacity = np.array([p.capacity for p in model.index.mentors], dtype=np.int64)
    first_slot = np.concatenate([[0], np.cumsum(capacity)[:-1]])
    repeat = capacity[mentor]
    rows = np.repeat(mentee, repeat)
    offsets = np.arange(int(repeat.sum())) - np.repeat(np.cumsum(repeat) - repeat, repeat)
    cols = np.repeat(first_slot[mentor], repeat) + offsets
    weights = np.repeat(cost, repeat)
    shift = -int(cost.min(initial=0)) + 1
    places = int(capacity.sum())
    rows = np.concatenate([rows, np.arange(m)])
    cols = np.concatenate([cols, places + np.arange(m)])
    weights = np.concatenate([weights + shift, np.full(m, unmatched + shift)])
    graph = coo_matrix((weights.astype(np.float64), (rows, cols)), shape=(m, places + m)).tocsr()
    started = time.perf_counter()
    row_ind, col_ind = min_weight_full_bipartite_matching(graph)
    seconds = time.perf_counter() - started
    chosen = np.asarray(graph[row_ind, col_ind]).ravel().astype(np.int64) - shift
    real = col_ind < places
    # A match costs -(score units + 1): see solver.integer_costs.
    units = int((-chosen[real] - 1).sum())
    return int(chosen.sum()), int(real.sum()), units, seconds


def run(n_mentees: int, n_mentors: int) -> None:
    """Benchmark one cohort size in memory and print its figures."""
    program, people, enrollments = make_rows(n_mentees, n_mentors)
    started = time.perf_counter()
    pool = build_pool(program, (0, 0), enrollments, people, [])
    inputs = runs.prepare_run(pool, RUN_OPTIONS)
    prepare = time.perf_counter() - started
    model = inputs.model
    plan = plan_cohort(model, inputs.options)
    t = plan.timings
    whole = prepare + sum(t.values())

    # Baselines on the very same candidate graph.
    edges = model.top_candidates(K)
    capacity = np.array([p.capacity for p in model.index.mentors])
    costs = integer_costs(edges, model.m, model.m + model.index.n + 2, SolveOptions())
    chosen = greedy(model.m, capacity, edges)
    greedy_total = float(edges.score[chosen].astype(np.float64).sum())
    exact_cost, exact_matched, exact_units, scipy_seconds = scipy_optimum(
        model, edges.mentee, edges.mentor, costs.edge, costs.unmatched
    )
    exact_total = exact_units / costs.scale
    print(
        f"{n_mentees:>6} x {n_mentors:<5} {plan.candidate_edges:>9,} candidate edges  "
        f"prepare {prepare:5.2f}s  scoring {t['scoring']:5.2f}s  solving {t['solving']:5.2f}s  "
        f"explaining {t['explaining']:5.2f}s  = whole {whole:5.2f}s"
    )
    print(
        f"{'':15} flow: total score {plan.total_score:10.2f}, matched "
        f"{len(plan.proposals)}/{n_mentees}, unmatched {len(plan.unmatched)}"
    )
    print(
        f"{'':15} greedy: total {greedy_total:10.2f}, matched {len(chosen)}  -> flow/greedy "
        f"{plan.total_score / greedy_total:.4f} (+{len(plan.proposals) - len(chosen)} matched)"
    )
    print(
        f"{'':15} SciPy exact: total {exact_total:10.2f}, matched {exact_matched} in "
        f"{scipy_seconds:.2f}s -> flow/SciPy {plan.total_score / exact_total:.6f}; integer "
        f"cost flow {plan.objective_cost} vs SciPy {exact_cost}: "
        f"{'identical' if plan.objective_cost == exact_cost else 'DIFFERENT'}"
    )
    suggestions(ScoringModel(pool.index, pool.mentees))


def suggestions(model: ScoringModel) -> None:
    """Latency of top-10 suggestions (with explanations) for one mentee, in memory."""
    rng = random.Random(3)
    samples = []
    for _ in range(200):
        row = rng.randrange(model.m)
        started = time.perf_counter()
        top = model.suggest(row, 10)
        _ = [model.explain(row, j) for j, _ in top]
        samples.append(time.perf_counter() - started)
    samples.sort()
    print(
        f"{'':15} suggestions top-10 for one mentee (in-memory projection): median "
        f"{statistics.median(samples) * 1000:.2f} ms, p95 {samples[189] * 1000:.2f} ms"
    )


async def run_in_service(n_mentees: int, n_mentors: int) -> None:
    """The service's run worker on a throwaway database: load, compute, store."""
    import asyncpg

    from services.matching.models import MatchingRun
    from services.matching.runner import RunWorker
    from shared.db import (
        SHARED_MIGRATIONS,
        asyncpg_dsn,
        drop_database,
        ensure_database,
        make_engine,
        make_sessionmaker,
        migrate,
    )

    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/mbbench_{uuid.uuid4().hex[:8]}"
    program, people, enrollments = make_rows(n_mentees, n_mentors)
    await ensure_database(url)
    try:
        await migrate(url, SHARED_MIGRATIONS, MIGRATIONS)
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await conn.execute(
                "INSERT INTO program (id, org_id, version, name, format, status,"
                " max_mentees_per_mentor, criteria) VALUES ($1, $2, 1, 'Bench', 'one_to_one',"
                " 'open', $3, $4)",
                program.id, program.org_id, CAPACITY, json.dumps(CRITERIA),
            )  # fmt: skip
            await conn.copy_records_to_table(
                "person",
                columns=["id", "org_id", "external_id", "department", "time_zone", "languages",
                         "manager_external_id", "hire_date", "employment_status", "attributes",
                         "version"],
                records=[(p.id, program.org_id, p.external_id, p.department, p.time_zone,
                          p.languages, p.manager_external_id, p.hire_date, "active",
                          json.dumps(p.attributes), 1) for p in people.values()],
            )  # fmt: skip
            await conn.copy_records_to_table(
                "enrollment",
                columns=["id", "org_id", "program_id", "person_id", "employee_external_id",
                         "version", "role", "skills", "goals", "languages", "capacity", "status"],
                records=[(e.id, program.org_id, program.id, e.person_id, e.employee_external_id, 1,
                          e.role, json.dumps(e.skills), e.goals, [], e.capacity, "active")
                         for e in enrollments],
            )  # fmt: skip
        finally:
            await conn.close()
        engine = make_engine(url, pool_size=4)
        sessions = make_sessionmaker(engine)
        async with sessions() as session, session.begin():
            run = await runs.create_run(session, program.org_id, program.id, dict(RUN_OPTIONS))
        worker = RunWorker(sessions)
        started = time.perf_counter()
        assert await worker.claim() == run.id
        await worker.execute(run.id)
        wall = time.perf_counter() - started
        async with sessions() as session:
            done = await session.get(MatchingRun, run.id)
            assert done is not None and done.status == "succeeded", done and done.error
            t = done.timings
            stored = wall - sum(t.values())
            print(
                f"{'':15} service run (PostgreSQL): load {t['loading']:.2f}s  scoring "
                f"{t['scoring']:.2f}s  solving {t['solving']:.2f}s  explaining "
                f"{t['explaining']:.2f}s  store+claim {stored:.2f}s  = whole {wall:.2f}s; "
                f"matched {done.matched_count}, total {done.total_score:.2f}"
            )
        mentees = [e.id for e in enrollments if e.role == "mentee"]
        samples = []
        for k in range(101):
            async with sessions() as session:
                started = time.perf_counter()
                await domain.suggestions(session, program.org_id, program.id, mentees[k], 10)
                samples.append(time.perf_counter() - started)
        cold, warm = samples[0], sorted(samples[1:])
        print(
            f"{'':15} service suggestions (use case, DB revision check, warm pool cache): "
            f"median {statistics.median(warm) * 1000:.2f} ms, p95 {warm[94] * 1000:.2f} ms "
            f"(first call loads the pool: {cold:.2f}s)"
        )
        started = time.perf_counter()
        async with sessions() as session, session.begin():
            applied = await runs.apply_run(session, program.org_id, run.id)
        print(
            f"{'':15} service apply (proposals -> proposed matches + outbox events): "
            f"{len(applied.created)} matches in {time.perf_counter() - started:.2f}s"
        )
        await engine.dispose()
    finally:
        await drop_database(url)


def top_k_loss(n_mentees: int = 5000, n_mentors: int = 2000) -> None:
    """What solving over each mentee's top-K candidates costs against the exact optimum
    over all allowed pairs (K = every mentor), with the service's own model and solver."""
    program, people, enrollments = make_rows(n_mentees, n_mentors)
    pool = build_pool(program, (0, 0), enrollments, people, [])
    model = runs.prepare_run(pool, RUN_OPTIONS).model
    started = time.perf_counter()
    exact = plan_cohort(model, RunOptions(candidates_per_mentee=n_mentors))
    exact_seconds = time.perf_counter() - started
    print(
        f"top-K loss at {n_mentees} x {n_mentors} (capacity {CAPACITY}): exact over all "
        f"{exact.candidate_edges:,} allowed pairs: total {exact.total_score:.2f}, matched "
        f"{len(exact.proposals)} in {exact_seconds:.1f}s"
    )
    print(f"{'K':>6} {'edges':>11} {'total':>10} {'loss':>9} {'matched':>8} {'by K':>5} {'s':>6}")
    for k in (5, 10, 25, 50, 100, 200):
        started = time.perf_counter()
        plan = plan_cohort(model, RunOptions(candidates_per_mentee=k))
        seconds = time.perf_counter() - started
        loss = 1 - plan.total_score / exact.total_score
        by_k = sum(K_NOTE in reason for _, reason in plan.unmatched)
        print(
            f"{k:>6} {plan.candidate_edges:>11,} {plan.total_score:>10.2f} {loss:>8.4%} "
            f"{len(plan.proposals):>8} {by_k:>5} {seconds:>6.2f}"
        )


def peer_run(n_peers: int = 5000, capacity: int = 2, *, mip_baseline: bool = False) -> None:
    """A peer run: the exact b-matching beside a greedy pairing and the LP bound on the same
    candidate pairs; the solve alone (wall and CPU: the machine may be shared) beside HiGHS'
    plain branch and cut over every pair (the previous solver) with `mip_baseline`."""
    program, people, enrollments = make_rows(n_peers, 0, format="peer", capacity=capacity)
    started = time.perf_counter()
    pool = build_pool(program, (0, 0), enrollments, people, [])
    inputs = runs.prepare_run(pool, RUN_OPTIONS)
    prepare = time.perf_counter() - started
    cpu = time.process_time()
    plan = plan_peers(inputs.model, inputs.options)
    plan_cpu = time.process_time() - cpu
    t = plan.timings
    score, ok = symmetric_scores(inputs.model)
    edges = candidate_pairs(score, ok, K)
    caps = np.full(n_peers, capacity)
    weight = np.rint(edges.score.astype(np.float64) * SCALE).astype(np.int64) + 1
    # Greedy: best pair first while both have a place.
    left, greedy_total, greedy_pairs = caps.copy(), 0.0, 0
    for e in np.argsort(-edges.score, kind="stable"):
        a, b = edges.a[e], edges.b[e]
        if left[a] > 0 and left[b] > 0:
            left[a] -= 1
            left[b] -= 1
            greedy_total += float(edges.score[e])
            greedy_pairs += 1
    started = time.perf_counter()
    incidence = csr_matrix(
        (
            np.ones(2 * len(edges)),
            (np.r_[edges.a, edges.b], np.r_[np.arange(len(edges)), np.arange(len(edges))]),
        ),
        shape=(n_peers, len(edges)),
    )
    lp = linprog(-weight, A_ub=incidence, b_ub=caps, bounds=(0, 1), method="highs")
    lp_seconds = time.perf_counter() - started
    lp_bound = -lp.fun / SCALE if lp.status == 0 else float("nan")
    print(
        f"peer run {n_peers} peers (capacity {capacity}, K {K}): {plan.candidate_edges:,} "
        f"candidate pairs  prepare {prepare:.2f}s  scoring {t['scoring']:.2f}s  solving "
        f"{t['solving']:.2f}s  explaining {t['explaining']:.2f}s  = whole "
        f"{prepare + sum(t.values()):.2f}s (plan CPU {plan_cpu:.2f}s)"
    )
    print(
        f"{'':15} exact: total {plan.total_score:.2f}, {len(plan.proposals)} pairs; greedy: "
        f"{greedy_total:.2f}, {greedy_pairs} pairs -> exact/greedy "
        f"{plan.total_score / greedy_total:.4f}; LP bound {lp_bound:.2f} ({lp_seconds:.2f}s)"
    )
    solve_wall, solve_cpu, chosen = _timed(lambda: solve_b_matching(n_peers, caps, edges))
    line = (
        f"{'':15} solve alone: flow + blossom cuts {solve_wall:.2f}s (CPU {solve_cpu:.2f}s), "
        f"weight {int(weight[chosen].sum())}"
    )
    if mip_baseline:
        mip_wall, mip_cpu, mip = _timed(lambda: integer_program(n_peers, caps, edges, weight))
        same = "same optimum" if weight[mip].sum() == weight[chosen].sum() else "DIFFERENT"
        line += f"; plain HiGHS MIP {mip_wall:.2f}s (CPU {mip_cpu:.2f}s), {same}"
    else:
        line += "; plain HiGHS MIP not run (--mip-baseline; about 300 s wall on 2 loaded cores)"
    print(line)


def _timed(solve: Callable[[], np.ndarray]) -> tuple[float, float, np.ndarray]:
    """Wall seconds, CPU seconds (every thread of this process) and the result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = solve()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def group_run(n_mentees: int = 20000, n_leaders: int = 4000, size: int = 5) -> None:
    """A group run: circles of up to `size` with mixed departments, beside greedy."""
    program, people, enrollments = make_rows(n_mentees, n_leaders, format="group", capacity=size)
    started = time.perf_counter()
    pool = build_pool(program, (0, 0), enrollments, people, [])
    inputs = runs.prepare_run(pool, {**RUN_OPTIONS, "one_mentee_per_department": True})
    prepare = time.perf_counter() - started
    plan = plan_cohort(inputs.model, inputs.options)
    t = plan.timings
    edges = inputs.model.top_candidates(K)
    capacity = np.array([p.capacity for p in inputs.model.index.mentors])
    chosen = greedy(inputs.model.m, capacity, edges)
    greedy_total = float(edges.score[chosen].astype(np.float64).sum())
    circles = len({p.mentor for p in plan.proposals})
    print(
        f"group run {n_mentees} mentees x {n_leaders} circle leaders (up to {size}, mixed "
        f"departments): prepare {prepare:.2f}s  scoring {t['scoring']:.2f}s  solving "
        f"{t['solving']:.2f}s  explaining {t['explaining']:.2f}s  = whole "
        f"{prepare + sum(t.values()):.2f}s"
    )
    print(
        f"{'':15} {circles} circles, {len(plan.proposals)} members, total "
        f"{plan.total_score:.2f}; greedy (no department rule) {greedy_total:.2f}, "
        f"{len(chosen)} members"
    )


def main() -> None:
    """Run the sizes given on the command line, or the three standard ones; `--formats`
    runs the top-K loss table, the peer run and the group run instead; `--peer` only the peer
    run (`--mip-baseline`: also the plain integer program, minutes)."""
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    service = "--service" in sys.argv
    if "--peer" in sys.argv:
        peer_run(mip_baseline="--mip-baseline" in sys.argv)
        return
    if "--formats" in sys.argv:
        top_k_loss()
        peer_run()
        group_run()
        return
    for size in args or ["1000x400", "5000x2000", "20000x8000"]:
        a, b = size.lower().split("x")
        run(int(a), int(b))
        if service:
            asyncio.run(run_in_service(int(a), int(b)))


if __name__ == "__main__":
    main()
