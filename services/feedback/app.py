"""Feedback service: `uvicorn services.feedback.app:app`."""

from pathlib import Path

from services.feedback.api import router
from services.feedback.api_tracks import router as tracks_router
from services.feedback.events import HANDLERS
from services.feedback.settings import FeedbackSettings
from shared.service import create_service_app

app = create_service_app(
    settings=FeedbackSettings(),
    routers=[router, tracks_router],
    migrations=Path(__file__).parent / "migrations",
    handlers=HANDLERS,
)
