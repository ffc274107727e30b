"""Profiles service: `uvicorn services.profiles.app:app`."""

from pathlib import Path

from services.profiles.api import router
from services.profiles.settings import ProfilesSettings
from shared.service import create_service_app

app = create_service_app(
    settings=ProfilesSettings(),
    routers=[router],
    migrations=Path(__file__).parent / "migrations",
)
