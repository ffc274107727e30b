"""Gateway service: `uvicorn services.gateway.app:app` (the only public port)."""

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.gateway import scim_errors
from services.gateway.api import DOCS_ASSETS_URL, router
from services.gateway.events import HANDLERS
from services.gateway.forwarding import Forwarder
from services.gateway.settings import GatewaySettings
from shared.service import create_service_app

# Swagger UI's files, as the fastapi-offline package ships them.
SWAGGER_ASSETS = Path(fastapi_offline.__file__).parent / "static"


def create_app(settings: GatewaySettings) -> FastAPI:
    """The gateway app for these settings (tests build one with unreachable upstreams)."""

    async def open_forwarder(app: FastAPI) -> None:
        app.state.forwarder = Forwarder(settings)
        await app.state.forwarder.start()

    async def close_forwarder(app: FastAPI) -> None:
        await app.state.forwarder.close()

    app = create_service_app(
        settings=settings,
        routers=[router],
        migrations=Path(__file__).parent / "migrations",
        handlers=HANDLERS,
        on_startup=open_forwarder,
        on_shutdown=close_forwarder,
        title="Mentorbus API",
        own_docs=False,
    )
    scim_errors.install(app)
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=SWAGGER_ASSETS), name="docs-assets")
    return app


app = create_app(GatewaySettings())
