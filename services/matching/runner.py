"""Runs queued matching runs in the background of the service.

Runs are rows, so the queue survives restarts: a worker claims a pending run (or a running
one whose worker stopped sending heartbeats), fairly across organizations (see `claim`),
with `FOR UPDATE SKIP LOCKED`, so replicas never compute the same run twice at once.
The computation is CPU-bound NumPy and OR-Tools work, so it runs in a thread while the
event loop keeps serving requests and writes the run's progress and heartbeat.
No HTTP and no Kafka here.
"""

import asyncio
import contextlib
import json
import logging
import time
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Text, cast, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from services.matching import runs
from services.matching.memory import collector_paused
from services.matching.models import MatchingRun
from services.matching.peers import plan_peers
from services.matching.planner import Progress, plan_cohort
from shared.db import utcnow

log = logging.getLogger(__name__)

# Run columns that hold megabytes of JSON on large cohorts.
_LARGE_JSON = ("proposals", "unmatched")


def _compact_json(value: object) -> ColumnElement[Any]:
    """A large JSON value as compact text for PostgreSQL to read as `jsonb`: a quarter less
    serializing and less to parse than the default encoding (the stored value is the same:
    `jsonb` keeps no whitespace). Run results hold no cycles, so no check for them."""
    text = json.dumps(value, separators=(",", ":"), check_circular=False)
    return cast(literal(text, Text), JSONB)


class RunWorker:
    """One background loop per process, computing one run at a time (they use both cores)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        poll_seconds: float = 2.0,
        stale_seconds: float = 15.0,
        max_attempts: int = 3,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._poll_seconds = poll_seconds
        self._stale = timedelta(seconds=stale_seconds)
        self._max_attempts = max_attempts
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the loop on the running event loop."""
        self._task = asyncio.create_task(self._loop(), name="matching-runs")

    async def stop(self) -> None:
        """Stop the loop; a run in progress is picked up again later (its heartbeat stops)."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def wake(self) -> None:
        """A run was queued: look now rather than at the next poll."""
        self._wakeup.set()

    async def _loop(self) -> None:
        while True:
            self._wakeup.clear()
            try:
                run_id = await self.claim()
                if run_id is not None:
                    await self.execute(run_id)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("matching run worker failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._poll_seconds)

    async def claim(self) -> uuid.UUID | None:
        """Take the next run, fairly across organizations: a run that waits (or whose worker
        went silent) of the organization with the fewest runs computing now, then of the one
        whose last run started longest ago (round robin), then the oldest. One tenant
        queuing many runs delays its own, not everyone's."""
        async with self._sessionmaker() as session, session.begin():
            stale_before = utcnow() - self._stale
            others = aliased(MatchingRun)
            busy = (
                select(func.count())
                .where(
                    others.org_id == MatchingRun.org_id,
                    others.status == "running",
                    others.heartbeat_at >= stale_before,
                )
                .scalar_subquery()
            )
            last_started = (
                select(func.max(others.started_at))
                .where(others.org_id == MatchingRun.org_id)
                .scalar_subquery()
            )
            run = await session.scalar(
                select(MatchingRun)
                .where(
                    or_(
                        MatchingRun.status == "pending",
                        (MatchingRun.status == "running")
                        & (MatchingRun.heartbeat_at < stale_before),
                    )
                )
                .order_by(busy, last_started.asc().nulls_first(), MatchingRun.created_at)
                .limit(1)
                .with_for_update(of=MatchingRun, skip_locked=True)
            )
            if run is None:
                return None
            if run.attempts >= self._max_attempts:
                run.status = "failed"
                run.error = f"gave up after {run.attempts} attempts (the worker kept stopping)"
                run.finished_at = utcnow()
                return None
            run.status = "running"
            run.attempts += 1
            run.stage = "loading"
            run.progress = 0.0
            run.heartbeat_at = utcnow()
            run.started_at = run.started_at or utcnow()
            return run.id

    async def execute(self, run_id: uuid.UUID) -> None:
        """Compute a claimed run and store its result (or why it failed)."""
        progress = {"stage": "loading", "fraction": 0.0}

        def report(stage: str, fraction: float) -> None:
            progress.update(stage=stage, fraction=fraction)

        stop = asyncio.Event()
        beat = asyncio.create_task(self._heartbeat(run_id, progress, stop))
        try:
            # Bulk work on objects that all stay alive: see `collector_paused`. They are
            # freed before the collector comes back, so it never has to walk them.
            with collector_paused():
                result = await self._compute(run_id, report)
                await self._stop_heartbeat(beat, stop)
                await self._finish(run_id, status="succeeded", stage="done", **result)
                del result
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("matching run %s failed", run_id)
            await self._stop_heartbeat(beat, stop)
            await self._finish(run_id, status="failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _compute(self, run_id: uuid.UUID, report: Progress) -> dict[str, Any]:
        """Load, plan and explain a run: the values its row stores."""
        started = time.perf_counter()
        async with self._sessionmaker() as session:
            run = await session.get(MatchingRun, run_id)
            assert run is not None
            inputs = await runs.load_run_inputs(session, run)
        planner = plan_peers if inputs.pool.format == "peer" else plan_cohort
        plan = await asyncio.to_thread(planner, inputs.model, inputs.options, report)
        timings = plan.timings
        timings["loading"] = time.perf_counter() - started - sum(timings.values())
        return runs.run_result(inputs, plan)

    @staticmethod
    async def _stop_heartbeat(beat: asyncio.Task[None], stop: asyncio.Event) -> None:
        """Let the heartbeat end before the run's outcome is written, rather than have a beat
        wait for the outcome's row lock and then be cancelled mid-query (which costs the
        connection a cancel request). A beat that hangs is cancelled in `execute`."""
        stop.set()
        await asyncio.wait({beat}, timeout=5.0)

    async def _finish(self, run_id: uuid.UUID, **values: object) -> None:
        values.setdefault("progress", 1.0)
        for name in _LARGE_JSON:
            if values.get(name) is not None:
                values[name] = _compact_json(values[name])
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                update(MatchingRun)
                .where(MatchingRun.id == run_id)
                .values(finished_at=utcnow(), updated_at=utcnow(), **values)
            )

    async def _heartbeat(
        self, run_id: uuid.UUID, progress: dict[str, object], stop: asyncio.Event
    ) -> None:
        stages = {"loading": (0.0, 0.05), "scoring": (0.05, 0.75), "solving": (0.75, 0.85)}
        stages["explaining"] = (0.85, 0.99)
        while not stop.is_set():
            stage = str(progress["stage"])
            low, high = stages.get(stage, (0.0, 1.0))
            fraction = float(progress["fraction"])  # type: ignore[arg-type]
            try:
                async with self._sessionmaker() as session, session.begin():
                    await session.execute(
                        update(MatchingRun)
                        .where(MatchingRun.id == run_id, MatchingRun.status == "running")
                        .values(
                            stage=stage,
                            progress=round(low + (high - low) * fraction, 3),
                            heartbeat_at=utcnow(),
                        )
                    )
            except Exception as exc:  # a missed beat is harmless; the next one may land
                log.warning("matching run %s heartbeat failed: %s", run_id, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
