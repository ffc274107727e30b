"""Where a webhook may point: never at private, loopback, link-local, metadata or other
special addresses (unless development settings allow private ones).

Checked twice: when a webhook is registered (its name resolved), and at connect time for
the very address the socket connects to, so a name that resolves differently later (DNS
rebinding) cannot slip through.
"""

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from aiohappyeyeballs import AddrInfoType, SocketFactoryType

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata services answer on these: never a webhook target, whatever the settings.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)


class BlockedTarget(OSError):
    """A webhook target address that is not allowed (an OSError so that, raised while
    connecting, it fails the connection like any unreachable host)."""


def refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why deliveries may not go to `address`, or None if they may."""
    if isinstance(address, ipaddress.IPv6Address):
        # ::ffff:127.0.0.1 and friends reach the IPv4 address they embed.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            reason = refusal(embedded, allow_private=allow_private)
            return f"{reason} (embedded in {address})" if reason else None
    if address in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address"
    if address.is_unspecified or address.is_multicast:
        return f"{address} is not a unicast destination"
    if allow_private:
        return None
    for kind, flag in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not globally reachable", not address.is_global),
    ):
        if flag:
            return f"{address} is {kind}"
    return None


def _parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (a literal address is itself)."""
    literal = _parse_ip(host)
    if literal is not None:
        return [literal]
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    addresses = [_parse_ip(str(info[4][0])) for info in infos]
    return [a for a in addresses if a is not None]


async def check_url(url: str, *, allow_private: bool, allow_http: bool) -> str | None:
    """Why `url` is not an acceptable webhook target (None if it is): scheme, shape, and
    every address its host resolves to now."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL: {exc}"
    schemes = {"https", "http"} if allow_http else {"https"}
    if parts.scheme not in schemes:
        return "must be an https URL" if not allow_http else "must be an http(s) URL"
    if not parts.hostname:
        return "names no host"
    if parts.username or parts.password:
        return "must not carry credentials"
    try:
        addresses = await resolve(parts.hostname, port or (443 if parts.scheme == "https" else 80))
    except (OSError, UnicodeError) as exc:
        return f"host {parts.hostname} does not resolve ({exc})"
    if not addresses:
        return f"host {parts.hostname} does not resolve"
    for address in addresses:
        reason = refusal(address, allow_private=allow_private)
        if reason:
            return f"refused target: {reason}"
    return None


def guarded_socket_factory(allow_private: bool) -> SocketFactoryType:
    """An aiohttp `socket_factory` that refuses to open a socket to a forbidden address:
    the check at connect time, on the address actually connected to."""

    def factory(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        address = _parse_ip(str(sockaddr[0]))
        reason = (
            "unparseable address"
            if address is None
            else refusal(address, allow_private=allow_private)
        )
        if reason:
            raise BlockedTarget(f"refused target: {reason}")
        return socket.socket(family=family, type=type_, proto=proto)

    return factory
