"""Gateway service: `uvicorn services.gateway.app:app` (the only public port)."""

from pathlib import Path

from fastapi import FastAPI

from services.gateway.api import router
from services.gateway.events import HANDLERS
from services.gateway.forwarding import Forwarder
from services.gateway.settings import GatewaySettings
from shared.service import create_service_app

settings = GatewaySettings()


async def _open_forwarder(app: FastAPI) -> None:
    app.state.forwarder = Forwarder(settings)
    await app.state.forwarder.start()


async def _close_forwarder(app: FastAPI) -> None:
    await app.state.forwarder.close()


app = create_service_app(
    settings=settings,
    routers=[router],
    migrations=Path(__file__).parent / "migrations",
    handlers=HANDLERS,
    on_startup=_open_forwarder,
    on_shutdown=_close_forwarder,
    title="Mentorbus API",
)
