"""Sessions service: `uvicorn services.sessions.app:app`."""

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.sessions.api import router
from services.sessions.events import HANDLERS
from services.sessions.reminders import ReminderWorker
from services.sessions.settings import SessionsSettings
from services.sessions.store import SessionConflict
from shared.errors import PROBLEM_JSON
from shared.service import create_service_app

settings = SessionsSettings()


async def _start(app: FastAPI) -> None:
    worker = ReminderWorker(
        app.state.sessionmaker, settings.reminder_poll_seconds, settings.reminder_batch_size
    )
    worker.start()
    app.state.reminders = worker


async def _stop(app: FastAPI) -> None:
    await app.state.reminders.stop()


app = create_service_app(
    settings=settings,
    routers=[router],
    migrations=Path(__file__).parent / "migrations",
    handlers=HANDLERS,
    on_startup=_start,
    on_shutdown=_stop,
)


@app.exception_handler(SessionConflict)
async def _conflict(_: Request, exc: SessionConflict) -> JSONResponse:
    # A booking conflict names every occurrence in the way, not just "conflict".
    body = {"type": "about:blank", "title": exc.title, "status": exc.status, "detail": exc.detail}
    body["conflicts"] = [
        {
            "session_id": str(c.session_id),
            "occurrence_starts_at": c.occurrence_starts_at.isoformat(),
            "starts_at": c.starts_at.isoformat(),
            "ends_at": c.ends_at.isoformat(),
            "employee_external_id": c.external_id,
        }
        for c in exc.conflicts
    ]
    return JSONResponse(body, status_code=exc.status, media_type=PROBLEM_JSON)
