"""The forwarded requests' way around FastAPI's router: a request whose path a service
owns (services/gateway/domain.py's table, which none of the gateway's own operations
shares) goes straight to `api.forward`, the function the catch-all routes call, without
route matching over every route and dependency solving: most of the gateway's own cost
on a plain read. Errors are rendered by the app's own exception handlers, exactly as
the router would; whatever has no handler goes on to the server-error middleware."""

import inspect

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway import domain
from services.gateway.api import FORWARDED_METHODS, ROUTE_KEY, forward

_METHODS = frozenset(FORWARDED_METHODS)


class ForwardingFastPath:
    """Pure ASGI, inside the request-id and metrics middlewares (so forwarded requests
    keep both) and outside the router."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http" and scope["method"] in _METHODS:
            route = domain.resolve_route(scope["path"])
        if route is None:
            await self.app(scope, receive, send)
            return
        scope[ROUTE_KEY] = route  # resolved once
        request = Request(scope, receive)
        try:
            response = await forward(request, request.app.state.forwarder)
        except Exception as exc:
            response = await _handled(request, exc)
        await response(scope, receive, send)


async def _handled(request: Request, exc: Exception) -> Response:
    """The answer of the app's handler for this exception (the nearest class that has
    one, as Starlette's ExceptionMiddleware picks it); re-raised if none does."""
    handlers = request.app.exception_handlers
    for cls in type(exc).__mro__:
        if cls in (Exception, BaseException):
            break
        handler = handlers.get(cls)
        if handler is not None:
            response = handler(request, exc)
            if inspect.isawaitable(response):
                response = await response
            assert isinstance(response, Response)
            return response
    raise exc
