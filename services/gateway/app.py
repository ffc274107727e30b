"""Gateway service: `uvicorn services.gateway.app:app` (the only public port)."""

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from services.gateway import auth
from services.gateway.api import DOCS_ASSETS_URL, router
from services.gateway.events import HANDLERS
from services.gateway.forwarding import Forwarder
from services.gateway.settings import GatewaySettings
from shared.service import create_service_app

CORS_REQUEST_HEADERS = [
    "Authorization", "Content-Type", "Idempotency-Key", "If-Match", "X-Request-Id",
]  # fmt: skip
CORS_RESPONSE_HEADERS = [
    "ETag", "Location", "X-Request-Id", "Idempotent-Replayed", "RateLimit", "RateLimit-Policy",
    "Retry-After",
]  # fmt: skip

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
    auth.install(app.state, settings)
    if settings.cors_origin_list:
        # Outermost, so a preflight is answered before authentication.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_RESPONSE_HEADERS,
            max_age=600,
        )
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=SWAGGER_ASSETS), name="docs-assets")
    return app


app = create_app(GatewaySettings())
