"""Forwarding to the owning service: GETs over the lean keep-alive client of
services/gateway/upstream.py, everything else over one pooled aiohttp session (measured
~25x the throughput of httpx.AsyncClient here)."""

import asyncio
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from services.gateway.settings import GatewaySettings
from services.gateway.upstream import UnsafeHeader, UpstreamPool
from shared.errors import DomainError
from shared.identity import IDENTITY_HEADERS, sign_identity
from shared.logs import REQUEST_ID_HEADER, request_id

# RFC 9110 hop-by-hop headers, plus those the client library sets itself.
_NOT_FORWARDED = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "transfer-encoding", "upgrade", "host", "content-length", "authorization",
        *IDENTITY_HEADERS,
    }
)  # fmt: skip
_NOT_RETURNED = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}
)


class UpstreamUnavailable(DomainError):
    """The owning service cannot be reached: 503, so clients retry later."""

    status = 503
    title = "Service unavailable"


class UpstreamTimeout(DomainError):
    """The owning service took too long: 504."""

    status = 504
    title = "Gateway timeout"


class UpstreamFailed(DomainError):
    """The owning service broke the exchange: 502."""

    status = 502
    title = "Bad gateway"


@dataclass(frozen=True)
class UpstreamResponse:
    """What the service answered."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class Forwarder:
    """Sends a request to a service and returns its answer, errors as problem types."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._pools: dict[str, UpstreamPool | None] = {}

    async def start(self) -> None:
        """Open the pooled session (inside the running event loop)."""
        s = self._settings
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=s.upstream_max_connections, ttl_dns_cache=60),
            timeout=aiohttp.ClientTimeout(
                total=s.upstream_timeout_seconds, connect=s.upstream_connect_timeout_seconds
            ),
            auto_decompress=False,
        )

    async def close(self) -> None:
        """Close the pool."""
        if self._session is not None:
            await self._session.close()
        for pool in self._pools.values():
            if pool is not None:
                pool.close()

    def _pool(self, service: str) -> UpstreamPool | None:
        """The lean client's pool for a service reached over plain http (None: https)."""
        if service not in self._pools:
            url = URL(self._settings.upstream_url(service))
            pool = None
            if url.scheme == "http" and url.host is not None and url.port is not None:
                s = self._settings
                limit, timeout = s.upstream_max_connections, s.upstream_connect_timeout_seconds
                pool = UpstreamPool(url.host, url.port, limit, timeout)
            self._pools[service] = pool
        return self._pools[service]

    async def forward(
        self,
        service: str,
        method: str,
        path_and_query: str,
        headers: list[tuple[str, str]],
        identity: dict[str, str],
        body: bytes = b"",
    ) -> UpstreamResponse:
        """Forward one request; raises UpstreamUnavailable/Timeout/Failed.

        `path_and_query` is sent byte for byte as given (already percent-encoded, never
        re-normalized), and the identity is signed for exactly that request."""
        assert self._session is not None, "Forwarder.start() was not awaited"
        # The services log under the same id (the client's, or the one the gateway made).
        rid = request_id.get()
        dropped = _NOT_FORWARDED if rid is None else _NOT_FORWARDED | {REQUEST_ID_HEADER}
        outgoing = [(k, v) for k, v in headers if k.lower() not in dropped]
        if identity:
            signed = sign_identity(
                identity,
                method=method,
                target=path_and_query.encode(),
                secret=self._settings.identity_secret,
                ttl_seconds=self._settings.identity_ttl_seconds,
            )
            outgoing += signed.items()
        if rid is not None:
            outgoing.append((REQUEST_ID_HEADER, rid))
        pool = self._pool(service) if method == "GET" and not body else None
        if pool is not None:
            return await self._get(pool, service, path_and_query, outgoing)
        url = URL(self._settings.upstream_url(service) + path_and_query, encoded=True)
        try:
            async with self._session.request(
                method,
                url,
                headers=CIMultiDict(outgoing),
                data=body or None,
                allow_redirects=False,
            ) as response:
                content = await response.read()
                returned = [
                    (k, v) for k, v in response.headers.items() if k.lower() not in _NOT_RETURNED
                ]
                return UpstreamResponse(response.status, returned, content)
        except TimeoutError:
            raise UpstreamTimeout(f"the {service} service did not answer in time") from None
        except aiohttp.ClientConnectionError as exc:
            if isinstance(exc, aiohttp.ClientConnectorError):
                raise UpstreamUnavailable(f"the {service} service is unavailable") from None
            raise UpstreamFailed(f"the {service} service broke the connection") from None
        except (aiohttp.ClientError, asyncio.IncompleteReadError):
            raise UpstreamFailed(f"the {service} service sent an invalid response") from None

    async def _get(
        self, pool: UpstreamPool, service: str, target: str, headers: list[tuple[str, str]]
    ) -> UpstreamResponse:
        """A GET over the lean client, its failures as the same problem types."""
        try:
            async with asyncio.timeout(self._settings.upstream_timeout_seconds):
                status, raw, content = await pool.get(target.encode(), headers)
        except TimeoutError:
            raise UpstreamTimeout(f"the {service} service did not answer in time") from None
        except UnsafeHeader as exc:
            raise UpstreamFailed(f"the request could not be forwarded: {exc}") from None
        except ValueError:
            raise UpstreamFailed(f"the {service} service sent an invalid response") from None
        except ConnectionError as exc:
            if isinstance(exc, ConnectionRefusedError):
                raise UpstreamUnavailable(f"the {service} service is unavailable") from None
            raise UpstreamFailed(f"the {service} service broke the connection") from None
        except OSError:
            raise UpstreamUnavailable(f"the {service} service is unavailable") from None
        returned = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in raw
            if k.lower().decode("latin-1") not in _NOT_RETURNED
        ]
        return UpstreamResponse(status, returned, content)
