"""Sessions service: `uvicorn services.sessions.app:app`."""

from pathlib import Path

from services.sessions.api import router
from services.sessions.events import HANDLERS
from services.sessions.settings import SessionsSettings
from shared.service import create_service_app

app = create_service_app(
    settings=SessionsSettings(),
    routers=[router],
    migrations=Path(__file__).parent / "migrations",
    handlers=HANDLERS,
)
