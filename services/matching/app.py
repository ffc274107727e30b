"""Matching service: `uvicorn services.matching.app:app`."""

from pathlib import Path

from services.matching.api import router
from services.matching.events import HANDLERS
from services.matching.settings import MatchingSettings
from shared.service import create_service_app

app = create_service_app(
    settings=MatchingSettings(),
    routers=[router],
    migrations=Path(__file__).parent / "migrations",
    handlers=HANDLERS,
)
