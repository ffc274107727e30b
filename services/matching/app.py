"""Matching service: `uvicorn services.matching.app:app`."""

from pathlib import Path

from fastapi import FastAPI

from services.matching.api import router
from services.matching.events import HANDLERS
from services.matching.runner import RunWorker
from services.matching.settings import MatchingSettings
from shared.service import create_service_app

settings = MatchingSettings()


async def start_runs(app: FastAPI) -> None:
    """Start the background worker of matching runs (it resumes runs left unfinished)."""
    worker = RunWorker(
        app.state.sessionmaker,
        poll_seconds=settings.matching_run_poll_seconds,
        stale_seconds=settings.matching_run_stale_seconds,
    )
    app.state.run_worker = worker
    app.state.max_open_runs = settings.matching_max_open_runs_per_program
    worker.start()


async def stop_runs(app: FastAPI) -> None:
    """Stop the worker; an unfinished run is resumed by the next worker to see it."""
    await app.state.run_worker.stop()


app = create_service_app(
    settings=settings,
    routers=[router],
    migrations=Path(__file__).parent / "migrations",
    handlers=HANDLERS,
    on_startup=start_runs,
    on_shutdown=stop_runs,
)
