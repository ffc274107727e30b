"""Refuses request targets that could mean another path than they say, before routing.

A dot segment (`.`, `..`, also percent-encoded as `%2e`), an encoded slash (`%2f`) or
backslash (`%5c`), a bare backslash, a control character or a non-ASCII byte in the raw
path is answered 400: such a path could be normalized, by the gateway's router, its HTTP
client or a service, into a path other than the one whose scope was checked. Everything
else reaches the router and is forwarded byte for byte as it arrived (no re-normalization).
"""

from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from shared.errors import problem

_SUSPECT = (b"%", b"\\", b"/.")


def unsafe_reason(raw_path: bytes) -> str | None:
    """Why a raw request path is refused, or None if it is safe to route as it is."""
    if not any(mark in raw_path for mark in _SUSPECT) and raw_path.isascii():
        return None  # the common case: one scan, nothing to decode
    if not raw_path.isascii():
        return "the path must be ASCII (percent-encode other characters)"
    if b"\\" in raw_path:
        return "the path must not contain a backslash"
    for segment in raw_path.split(b"/"):
        decoded = unquote_to_bytes(segment)
        if decoded in (b".", b".."):
            return "the path must not contain dot segments"
        if b"/" in decoded or b"\\" in decoded:
            return "the path must not contain encoded slashes or backslashes"
        if any(byte < 0x20 or byte == 0x7F for byte in decoded):
            return "the path must not contain control characters"
    return None


class PathSafetyMiddleware:
    """400 problem+json for an unsafe raw path (see `unsafe_reason`), before any route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
            reason = unsafe_reason(raw_path)
            if reason is None and not scope.get("query_string", b"").isascii():
                reason = "the query must be ASCII (percent-encode other characters)"
            if reason is not None:
                await problem(400, "Bad request", reason)(scope, receive, send)
                return
        await self.app(scope, receive, send)
