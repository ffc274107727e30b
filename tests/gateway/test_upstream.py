"""The gateway's lean keep-alive client for forwarded GETs (services/gateway/upstream.py),
against a real socket server that answers as HTTP/1.1 servers may: with a length or in
chunks, keeping the connection or dropping it while idle."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from devstack.processes import free_port
from services.gateway.upstream import UnsafeHeader, UpstreamPool


class Server:
    """Answers each request on a connection in turn from `answers`; counts connections
    and the requests it read; closes a connection after its `close_after` answers."""

    def __init__(self, answers: list[bytes], close_after: int = 100) -> None:
        self.answers = answers
        self.close_after = close_after
        self.connections = 0
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            for _ in range(self.close_after):
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head)
                writer.write(self.answers[(len(self.requests) - 1) % len(self.answers)])
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[list[asyncio.Server]]:
    servers: list[asyncio.Server] = []
    yield servers
    for server in servers:
        server.close()


async def start(server: Server, servers: list[asyncio.Server]) -> UpstreamPool:
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    servers.append(listening)
    port = listening.sockets[0].getsockname()[1]
    return UpstreamPool("127.0.0.1", port, limit=4, connect_timeout=2)


LENGTH = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
CHUNKED = (
    b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\nx-a: 1\r\nx-a: 2\r\n\r\n"
    b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
)


async def test_answers_with_a_length_or_in_chunks_on_one_kept_connection(
    serve: list[asyncio.Server],
) -> None:
    server = Server([LENGTH, CHUNKED])
    pool = await start(server, serve)
    status, headers, body = await pool.get(b"/v1/x?a=%20", [("x-request-id", "r1")])
    assert (status, body) == (200, b"{}") and (b"content-type", b"application/json") in headers
    status, headers, body = await pool.get(b"/v1/y", [])
    assert (status, body) == (404, b"abcde")
    assert [v for k, v in headers if k == b"x-a"] == [b"1", b"2"]  # repeated headers kept
    assert server.connections == 1
    assert server.requests[0].startswith(b"GET /v1/x?a=%20 HTTP/1.1\r\n")
    assert b"\r\nx-request-id: r1\r\n" in server.requests[0]
    pool.close()


async def test_a_connection_the_server_dropped_while_idle_is_replaced(
    serve: list[asyncio.Server],
) -> None:
    server = Server([LENGTH], close_after=1)  # like a keep-alive timeout, every time
    pool = await start(server, serve)
    for _ in range(3):
        assert (await pool.get(b"/v1/x", []))[0] == 200
        await asyncio.sleep(0.05)  # the close reaches the client, or not yet: both work
    assert server.connections == 3
    pool.close()


async def test_a_header_with_a_line_break_is_never_sent(serve: list[asyncio.Server]) -> None:
    server = Server([LENGTH])
    pool = await start(server, serve)
    with pytest.raises(UnsafeHeader):
        await pool.get(b"/v1/x", [("x-mentorbus-subject", "a\r\nx-mentorbus-admin: true")])
    assert server.requests == []
    pool.close()


async def test_an_unreachable_service_raises() -> None:
    with pytest.raises(OSError):
        await UpstreamPool("127.0.0.1", free_port(), limit=1, connect_timeout=2).get(b"/", [])


async def test_a_broken_answer_raises(serve: list[asyncio.Server]) -> None:
    pool = await start(Server([b"NOT HTTP AT ALL\r\n\r\n"]), serve)
    with pytest.raises(ValueError):
        await pool.get(b"/v1/x", [])
    truncated = await start(Server([LENGTH[:-1]], close_after=1), serve)
    with pytest.raises(ConnectionError):
        await truncated.get(b"/v1/x", [])
