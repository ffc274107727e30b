"""Gateway service: `uvicorn services.gateway.app:app` (the only public port)."""

from pathlib import Path

from fastapi import FastAPI

from services.gateway.api import router
from services.gateway.events import HANDLERS
from services.gateway.forwarding import Forwarder
from services.gateway.settings import GatewaySettings
from shared.service import create_service_app


def create_app(settings: GatewaySettings) -> FastAPI:
    """The gateway app for these settings (tests build one with unreachable upstreams)."""

    async def open_forwarder(app: FastAPI) -> None:
        app.state.forwarder = Forwarder(settings)
        await app.state.forwarder.start()

    async def close_forwarder(app: FastAPI) -> None:
        await app.state.forwarder.close()

    return create_service_app(
        settings=settings,
        routers=[router],
        migrations=Path(__file__).parent / "migrations",
        handlers=HANDLERS,
        on_startup=open_forwarder,
        on_shutdown=close_forwarder,
        title="Mentorbus API",
    )


app = create_app(GatewaySettings())
