"""Gateway service: `uvicorn services.gateway.app:app` (the only public port)."""

import asyncio
import contextlib
import logging
from pathlib import Path

import asyncpg
import fastapi_offline
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import start_http_server

from services.gateway import auth, scim_errors, webhooks
from services.gateway.api import DOCS_ASSETS_URL, router
from services.gateway.asyncapi import router as asyncapi_router
from services.gateway.events import HANDLERS, INTEREST
from services.gateway.fastpath import ForwardingFastPath
from services.gateway.forwarding import Forwarder
from services.gateway.idempotency import IdempotencyStore
from services.gateway.pathsafety import PathSafetyMiddleware
from services.gateway.ratelimit import RateLimiter
from services.gateway.settings import GatewaySettings
from shared.errors import problem
from shared.service import create_service_app

log = logging.getLogger(__name__)
CORS_REQUEST_HEADERS = [
    "Authorization", "Content-Type", "Idempotency-Key", "If-Match", "X-Request-Id",
]  # fmt: skip
CORS_RESPONSE_HEADERS = [
    "ETag", "Location", "X-Request-Id", "Idempotent-Replayed", "RateLimit", "RateLimit-Policy",
    "Retry-After",
]  # fmt: skip

# Swagger UI's files, as the fastapi-offline package ships them.
SWAGGER_ASSETS = Path(fastapi_offline.__file__).parent / "static"
# The reference console (services/gateway/console), as its build leaves it.
CONSOLE_DIST = Path(__file__).parent / "console" / "dist"


async def _purge_periodically(app: FastAPI, every_seconds: float) -> None:
    """Drop ended rate-limit windows and expired idempotency records (every replica may
    do it: the deletes are idempotent)."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            await app.state.rate_limiter.purge()
            await app.state.idempotency.purge()
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("purging rate-limit and idempotency records failed: %s", exc)


def create_app(settings: GatewaySettings) -> FastAPI:
    """The gateway app for these settings (tests build one with unreachable upstreams)."""

    async def start(app: FastAPI) -> None:
        app.state.forwarder = Forwarder(settings)
        await app.state.forwarder.start()
        await webhooks.app.start(app, settings)
        # Rate limits and idempotency records: plain autocommit statements on the plain
        # pool, never inside a request's transaction (no lock held while forwarding).
        app.state.rate_limiter = RateLimiter(app.state.pool, settings.rate_limit_window_seconds)
        app.state.idempotency = IdempotencyStore(
            app.state.pool,
            settings.idempotency_ttl_hours,
            stale_after_seconds=settings.upstream_timeout_seconds + 30,
        )
        app.state.purger = asyncio.create_task(
            _purge_periodically(app, settings.rate_limit_window_seconds)
        )
        app.state.metrics_server = None
        if settings.metrics_port:
            # Operators' port: Prometheus scrapes it; the public port has no /metrics.
            app.state.metrics_server, _ = start_http_server(settings.metrics_port)

    async def stop(app: FastAPI) -> None:
        await webhooks.app.stop(app)
        if app.state.metrics_server is not None:
            await asyncio.to_thread(app.state.metrics_server.shutdown)
            app.state.metrics_server.server_close()
        app.state.purger.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await app.state.purger
        await app.state.forwarder.close()

    app = create_service_app(
        settings=settings,
        # Before `router`: its catch-all would otherwise forward /v1/webhooks.
        routers=[webhooks.api.router, asyncapi_router, router],
        migrations=Path(__file__).parent / "migrations",
        handlers=HANDLERS,
        interest=INTEREST,
        on_startup=start,
        on_shutdown=stop,
        title="Mentorbus API",
        own_docs=False,
        edge=True,
        pool=True,
        middleware=[ForwardingFastPath],
    )
    scim_errors.install(app)
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
    _mount_console(app)
    # Outermost: an unsafe path is refused before anything routes it.
    app.add_middleware(PathSafetyMiddleware)
    return app


def _mount_console(app: FastAPI) -> None:
    """Serve the console's static files at /console (public, like /docs: it signs in with
    the API itself). Unbuilt, /console says so (503) instead of vanishing into a 404."""
    if (CONSOLE_DIST / "index.html").is_file():
        app.mount("/console", StaticFiles(directory=CONSOLE_DIST, html=True), name="console")
        return

    @app.get("/console", include_in_schema=False)
    @app.get("/console/{rest:path}", include_in_schema=False)
    async def console_not_built() -> JSONResponse:
        return problem(
            503, "Console not built", "Run scripts/bootstrap (services/gateway/console/build)."
        )


app = create_app(GatewaySettings())
