"""A Kafka-protocol proxy that enforces Apache Kafka's `group.min.session.timeout.ms`
in front of the embedded broker.

Tansu accepts any consumer session timeout; Apache Kafka (6000 ms by default) answers a
JoinGroup below its floor with INVALID_SESSION_TIMEOUT (error 26). Readiness tests need a
broker that refuses like Apache Kafka does, so this proxy forwards every request to a real
Tansu broker (advertised at the proxy's address, so all connections pass through it) and
answers only a JoinGroup under the floor itself, with exactly that error.
"""

import asyncio
import contextlib
import struct
import threading

from kafka.protocol.consumer.group import JoinGroupRequest, JoinGroupResponse

JOIN_GROUP = 11
INVALID_SESSION_TIMEOUT = 26


def _refusal(frame: bytes, floor_ms: int) -> bytes | None:
    """The framed error answer to a JoinGroup below the floor; None to forward `frame`."""
    api_key, api_version = struct.unpack(">hh", frame[:4])
    if api_key != JOIN_GROUP:
        return None
    request = JoinGroupRequest.decode(frame, version=api_version, header=True)
    if request.session_timeout_ms >= floor_ms:
        return None
    response = JoinGroupResponse(
        version=api_version, throttle_time_ms=0, error_code=INVALID_SESSION_TIMEOUT,
        generation_id=-1, protocol_name="", leader="", member_id="", members=[],
    )  # fmt: skip
    response.with_header(correlation_id=request.header.correlation_id)
    return bytes(response.encode(header=True, framed=True))


class SessionFloorProxy:
    """Listens on 127.0.0.1:`port`, forwards to `upstream_port`, refuses short sessions."""

    def __init__(self, port: int, upstream_port: int, floor_ms: int = 6000) -> None:
        self.port = port
        self.upstream_port = upstream_port
        self.floor_ms = floor_ms
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> None:
        """Start listening (in a thread of its own)."""
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", self.port), self._loop
        ).result(10)

    def stop(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        broker_r, broker_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        # Answers must reach the client in request order: ours wait for the broker's
        # earlier answers, so refusals are sent through the same ordered writer.
        lock = asyncio.Lock()

        async def upstream() -> None:
            while True:
                size = struct.unpack(">i", await client_r.readexactly(4))[0]
                frame = await client_r.readexactly(size)
                refusal = _refusal(frame, self.floor_ms)
                if refusal is None:
                    broker_w.write(struct.pack(">i", size) + frame)
                    await broker_w.drain()
                else:
                    async with lock:
                        client_w.write(refusal)
                        await client_w.drain()

        async def downstream() -> None:
            while True:
                header = await broker_r.readexactly(4)
                body = await broker_r.readexactly(struct.unpack(">i", header)[0])
                async with lock:
                    client_w.write(header + body)
                    await client_w.drain()

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        with contextlib.suppress(Exception):
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for writer in (client_w, broker_w):
            writer.close()
