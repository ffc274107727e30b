"""The one way a Mentorbus service is assembled: database and migrations, outbox relay,
event consumer, problem+json errors, `/healthz`, `/readyz` and `/metrics`."""

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import consistency, logs, openapi
from shared.consumer import EventConsumer, Handler, Interest
from shared.db import (
    SHARED_MIGRATIONS,
    asyncpg_dsn,
    database_unavailable,
    ensure_database,
    lost_a_race,
    make_engine,
    make_sessionmaker,
    migrate,
    pending_migrations,
    unstorable_text,
)
from shared.errors import FieldError, install_problem_handlers, problem
from shared.events import ALL_TOPICS, EventData
from shared.identity import IdentityMiddleware
from shared.kafka import EventPublisher, broker_reachable, ensure_topics
from shared.outbox import OutboxRelay
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter(
    "mentorbus_http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "mentorbus_http_request_seconds", "HTTP request latency", ["service", "method", "route"]
)

LifespanHook = Callable[[FastAPI], Awaitable[None]]
# A handler that serves many paths (the gateway's forwarding) names the one it served here.
ROUTE_LABEL = "mentorbus.route"


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed when the handler returns, rolled back if it
    raises. Handlers and domain code never commit themselves."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker.begin() as session:
        yield session


async def _keep_session_state(_: asyncpg.Connection) -> None:
    # The pool's users run single autocommit statements: no session state (settings,
    # LISTEN, advisory locks, cursors) to undo, so a released connection skips asyncpg's
    # default `RESET ALL ...` round trip. asyncpg still rolls back an open transaction.
    return None


async def create_pool(settings: ServiceSettings) -> asyncpg.Pool:
    """A plain asyncpg pool on the service's database, for the few hot paths that are one
    statement each (a read by id, a rate-limit counter): no ORM session, no pre-ping, no
    BEGIN/COMMIT, no reset query (json and jsonb come as text, as asyncpg gives them).
    Anything that needs a transaction uses SessionDep."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        asyncpg_dsn(settings.database_url),
        min_size=1,
        max_size=settings.database_pool_size,
        reset=_keep_session_state,
    )
    return pool


async def get_pool(request: Request) -> asyncpg.Pool:
    """The app's plain asyncpg pool (`create_service_app(..., pool=True)`)."""
    pool: asyncpg.Pool = request.app.state.pool
    return pool


PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]

# scope="function": commit before the response is sent. FastAPI's default ("request") runs
# the exit code after sending, so a client could read before the write it was told about
# had committed, and never hear of a failed commit.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


class MetricsMiddleware:
    """Counts requests and their latency by route template (pure ASGI: cheap)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get(ROUTE_LABEL) or getattr(scope.get("route"), "path", "unmatched")
            HTTP_REQUESTS.labels(self.service, scope["method"], route, str(status)).inc()
            HTTP_LATENCY.labels(self.service, scope["method"], route).observe(
                time.perf_counter() - started
            )


def operations_router(*, metrics: bool = True) -> APIRouter:
    """`/healthz` (the process is up), `/readyz` (database and broker reachable), and
    `/metrics` unless `metrics` is False (the gateway serves it on an operator port)."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @router.get("/readyz", response_model=None)
    async def readyz(request: Request) -> dict[str, Any] | JSONResponse:
        """Readiness: this service's database and the broker answer, and its consumer (if
        it has one) has joined its group."""
        settings: ServiceSettings = request.app.state.settings
        consumer: EventConsumer | None = request.app.state.consumer
        checks = {"database": False, "broker": await broker_reachable(settings)}
        reasons: list[str] = []
        if consumer is not None:
            reason = consumer.not_ready_reason
            checks["consumer"] = reason is None
            if reason:
                reasons.append(reason)
        try:
            async with request.app.state.sessionmaker() as session:
                await session.execute(text("SELECT 1"))
            checks["database"] = True
        except Exception as exc:
            log.warning("readiness: database unreachable: %s", exc)
        if all(checks.values()):
            return {"status": "ready", "checks": checks}
        failing = ", ".join(k for k, ok in checks.items() if not ok)
        detail = "; ".join([f"not ready: {failing}", *reasons])
        response = problem(503, "Service unavailable", detail)
        response.headers["Retry-After"] = "1"
        return response

    if metrics:

        @router.get("/metrics", include_in_schema=False)
        async def metrics_() -> Response:
            """Prometheus exposition."""
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


async def _ensure_topics_then_consume(
    settings: ServiceSettings, topics: list[str], consumer: EventConsumer | None
) -> None:
    # The broker may still be starting (or down): keep trying, the service is up meanwhile.
    delay = 0.5
    while True:
        try:
            await asyncio.to_thread(ensure_topics, settings, topics)
            break
        except Exception as exc:
            log.warning("cannot ensure topics yet (%s); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
    if consumer is not None:
        consumer.start()


async def _refuse_pending_migrations(database_url: str, migrations: Path) -> None:
    # The release's migration Job has not run (or failed): serving an old schema would
    # fail request by request, so fail the start instead and let the platform retry.
    pending = await pending_migrations(database_url, SHARED_MIGRATIONS, migrations)
    if pending:
        raise RuntimeError(
            f"{len(pending)} migration(s) pending ({', '.join(pending)}) and "
            "MENTORBUS_MIGRATE_ON_START is false: run `python -m shared.migrate` first"
        )


def _race_lost(exc: BaseException) -> JSONResponse:
    # A deadlock or serialization failure: the transaction lost a race with another one;
    # it changed nothing, and the same request may well succeed when retried.
    log.info("transaction lost a race: %s", exc)
    return problem(
        409,
        "Conflict",
        "a concurrent change conflicts with this request; retry it",
        headers={"Retry-After": "0"},
    )


def create_service_app(
    *,
    settings: ServiceSettings,
    routers: list[APIRouter],
    migrations: Path,
    handlers: Mapping[type[EventData], Handler] | None = None,
    interest: Interest | None = None,
    on_startup: LifespanHook | None = None,
    on_shutdown: LifespanHook | None = None,
    title: str = "",
    own_docs: bool = True,
    edge: bool = False,
    openapi_extend: Callable[[dict[str, Any]], None] | None = None,
    pool: bool = False,
    middleware: Sequence[Callable[[ASGIApp], ASGIApp]] = (),
) -> FastAPI:
    """Build a service: its own database (created and migrated on start), an outbox relay,
    one consumer group for `handlers` (and its `interest` filter, see EventConsumer), and
    the operations endpoints. `own_docs=False`
    leaves `/openapi.json` and `/docs` to the caller (the gateway serves the whole API's);
    `openapi_extend` adds to the schema what FastAPI cannot see (a mounted protocol).
    `pool=True` also opens a plain asyncpg pool (`app.state.pool`, `PoolDep`) for
    one-statement hot paths. `middleware` (pure ASGI classes taking the app) run innermost,
    inside the request-id and metrics middlewares.

    A service (`edge=False`) verifies the gateway's signed identity on every request. The
    gateway (`edge=True`) faces clients: it authenticates them itself, and its `/metrics`
    is not served on the public port."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logs.configure(settings.service_name, settings.log_level)
        consistency.configure(settings.projection_wait_seconds)
        if settings.migrate_on_start:
            await ensure_database(settings.database_url)
            await migrate(settings.database_url, SHARED_MIGRATIONS, migrations)
        else:
            await _refuse_pending_migrations(settings.database_url, migrations)
        engine = make_engine(settings.database_url, settings.database_pool_size)
        sessionmaker = make_sessionmaker(engine)
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessionmaker = sessionmaker
        relay = OutboxRelay(
            service=settings.service_name,
            database_url=settings.database_url,
            sessionmaker=sessionmaker,
            publisher=EventPublisher(settings),
            batch_size=settings.relay_batch_size,
            idle_poll_seconds=settings.relay_idle_poll_seconds,
            retention=timedelta(hours=settings.message_retention_hours),
        )
        consumer = (
            EventConsumer(
                settings=settings,
                group_id=f"mentorbus.{settings.service_name}",
                handlers=handlers,
                sessionmaker=sessionmaker,
                dead_letters=EventPublisher(settings),
                interest=interest,
            )
            if handlers
            else None
        )
        app.state.consumer = consumer
        app.state.pool = await create_pool(settings) if pool else None
        topics = [*ALL_TOPICS, *([consumer.dead_letter_topic] if consumer else [])]
        relay.start()
        starter = asyncio.create_task(_ensure_topics_then_consume(settings, topics, consumer))
        if on_startup:
            await on_startup(app)
        # What startup built (modules, schemas, routes, caches) lives as long as the
        # process: out of the collector's sight, a full collection no longer walks it.
        # It did, and stopped a service for 100-160 ms now and then (a gateway's p99).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if on_shutdown:
                await on_shutdown(app)
            starter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starter
            # Together: the consumer commits what it applied, the relay sends its batch.
            grace = settings.shutdown_grace_seconds
            await asyncio.gather(*([consumer.stop(grace)] if consumer else []), relay.stop(grace))
            if app.state.pool is not None:
                await app.state.pool.close()
            await engine.dispose()

    app = FastAPI(
        title=title or f"Mentorbus {settings.service_name}",
        lifespan=lifespan,
        openapi_url="/openapi.json" if own_docs else None,
        docs_url="/docs" if own_docs else None,
        redoc_url=None,
        # No OpenTelemetry here (Prometheus at /metrics): without this, FastAPI's dormant
        # bridge looks for a configured provider, in os.environ, on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_problem_handlers(app)
    openapi.install(app, openapi_extend)

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        # A concurrent write won a unique constraint race: the client may retry.
        return problem(409, "Conflict", "a concurrent change conflicts with this request")

    for inner in middleware:
        app.add_middleware(inner)
    if not edge:
        app.add_middleware(IdentityMiddleware, secret=settings.identity_secret)

    @app.exception_handler(DBAPIError)
    async def _database(_: Request, exc: DBAPIError) -> JSONResponse:
        if unstorable_text(exc):
            detail = "text may not contain NUL characters"
            return problem(
                422, "Unprocessable content", detail, errors=[FieldError("body", detail)]
            )
        if database_unavailable(exc):
            # Down, restarting or closed: say so at once, and let the client retry.
            log.warning("database unavailable: %s", exc.orig or exc)
            return problem(
                503,
                "Service unavailable",
                "The service's database is unavailable; retry shortly.",
                headers={"Retry-After": "1"},
            )
        if lost_a_race(exc):
            return _race_lost(exc)
        log.error("database error", exc_info=exc)
        return problem(500, "Internal server error", "An unexpected error occurred.")

    async def _driver(_: Request, exc: Exception) -> JSONResponse:
        # Code that talks to asyncpg directly (the gateway's guards) meets the driver's
        # errors unwrapped: the same answer as above when the database is away.
        if database_unavailable(exc):
            log.warning("database unavailable: %s", exc)
            return problem(
                503,
                "Service unavailable",
                "The service's database is unavailable; retry shortly.",
                headers={"Retry-After": "1"},
            )
        if lost_a_race(exc):
            return _race_lost(exc)
        log.error("database error", exc_info=exc)
        return problem(500, "Internal server error", "An unexpected error occurred.")

    for driver_error in (
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.exceptions.InternalClientError,
        ConnectionError,
    ):
        app.add_exception_handler(driver_error, _driver)

    app.add_middleware(MetricsMiddleware, service=settings.service_name)
    app.add_middleware(logs.RequestIdMiddleware)  # outermost: every line has the id
    app.include_router(operations_router(metrics=not edge))
    for router in routers:
        app.include_router(router)
    return app
