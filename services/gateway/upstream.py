"""A lean HTTP/1.1 client for the gateway's hottest exchange, a forwarded GET: keep-alive
connections to one service, the request written as bytes and the answer parsed by
httptools (the parser uvicorn uses). It does a fraction of aiohttp's work per request,
which is most of what the gateway adds to a plain read. Other methods (bodies, HEAD's
bodiless answers) go through aiohttp (services/gateway/forwarding.py).

A GET is idempotent: one sent on a kept-alive connection that the service had closed
meanwhile (before any byte of an answer came back) is sent once more on a new one."""

import asyncio
import re
from collections import deque
from typing import cast

import httptools

# What may never reach the wire inside a header (a line break would start a new header).
_UNSAFE = re.compile(r"[\r\n\0]")


class UnsafeHeader(ValueError):
    """A header would break the request's framing (a line break or NUL in it)."""


class UpstreamClosed(ConnectionError):
    """The connection closed before an answer began (a kept-alive one the service
    dropped): safe to retry a GET."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[tuple[int, list[tuple[bytes, bytes]], bytes]] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._started = False
        self._keep = True

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._started = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ValueError(f"invalid response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._started:
            self._fail(ConnectionError("the connection closed in the middle of an answer"))
        else:
            self._fail(UpstreamClosed("the connection closed before an answer"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._keep = self._parser.should_keep_alive()
        answer = self._answer
        if answer is not None and not answer.done():
            status = self._parser.get_status_code()
            answer.set_result((status, self._headers, b"".join(self._body)))

    def _fail(self, exc: Exception) -> None:
        self.closed = True
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    async def exchange(self, request: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Send one request and wait for its whole answer."""
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self._headers, self._body, self._started = [], [], False
        self.transport.write(request)
        try:
            return await self._answer
        finally:
            self._answer = None
            if not self._keep:
                self._fail(ConnectionError("closed after the answer"))

    def abort(self) -> None:
        """Drop the connection (an exchange cut short leaves it unusable)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class UpstreamPool:
    """Keep-alive connections to one `host:port`, at most `limit` at a time."""

    def __init__(self, host: str, port: int, limit: int, connect_timeout: float) -> None:
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self._idle: deque[_Connection] = deque()
        self._slots = asyncio.Semaphore(limit)
        self._host_header = f"{host}:{port}".encode()

    async def get(
        self, target: bytes, headers: list[tuple[str, str]]
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """GET `target` (raw path and query) with these headers: status, raw headers,
        body. Raises UnsafeHeader before sending anything, OSError if the service cannot
        be reached, ConnectionError or ValueError if the exchange breaks; the caller
        bounds the whole with a timeout."""
        lines = [b"GET " + target + b" HTTP/1.1", b"host: " + self._host_header]
        for name, value in headers:
            if _UNSAFE.search(name) or _UNSAFE.search(value):
                raise UnsafeHeader(f"the header {name!r} holds a line break or NUL")
            lines.append(name.encode("latin-1") + b": " + value.encode("latin-1"))
        request = b"\r\n".join(lines) + b"\r\n\r\n"
        async with self._slots:
            while self._idle:
                connection = self._idle.pop()
                if connection.closed:
                    continue
                try:
                    return await self._exchange(connection, request)
                except UpstreamClosed:
                    continue  # the service closed it while idle: try another one
            return await self._exchange(await self._connect(), request)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.connect_timeout):
            _, connection = await loop.create_connection(_Connection, self.host, self.port)
        return connection

    async def _exchange(
        self, connection: _Connection, request: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        try:
            answer = await connection.exchange(request)
        except BaseException:
            connection.abort()
            raise
        if not connection.closed:
            self._idle.append(connection)
        return answer

    def close(self) -> None:
        """Close the idle connections."""
        while self._idle:
            self._idle.pop().abort()
