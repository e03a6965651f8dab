"""HTTP calls to URLs users give us (webhooks), fenced against SSRF.

A deployed stage calls only `https` URLs whose host resolves to public
addresses, all of them; it connects to the address it checked (so a DNS answer
that changes between the check and the call cannot redirect it), and never
follows redirects. The local stack may allow loopback receivers over http
(`OE_WEBHOOK_ALLOW_LOOPBACK`), still never private or link-local ones.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from chalicelib.config import settings
from chalicelib.errors import InvalidInput

MAX_URL_LENGTH = 2048


class Refused(InvalidInput):
    """The URL may not be called from this stage."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query
    address: str  # the checked address the call connects to


@dataclass(frozen=True)
class Answer:
    status: int
    latency_ms: int


def _kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address may not be called, or None if it is public."""
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return "reserved"
    if address.is_private or not address.is_global:
        return "private"
    return None


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):  # gaierror is an OSError; NUL bytes a ValueError
        raise Refused(f"host {host!r} does not resolve") from None
    return sorted({info[4][0] for info in infos})


def check_url(url: str) -> Target:
    """Parse and resolve `url`; refuse anything this stage may not call."""
    allow_loopback = settings().webhook_allow_loopback
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
        raise Refused(f"url must be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise Refused("url is not a valid URL") from None
    schemes = ("https", "http") if allow_loopback else ("https",)
    if parts.scheme not in schemes:
        raise Refused(f"url must be {' or '.join(schemes)}")
    if not parts.hostname or parts.username or parts.password:
        raise Refused("url must name a host, without user or password")
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = resolve(parts.hostname, port)
    if not addresses:
        raise Refused(f"host {parts.hostname!r} does not resolve")
    for text in addresses:
        kind = _kind(ipaddress.ip_address(text.split("%")[0]))
        if kind is None or (kind == "loopback" and allow_loopback):
            continue
        raise Refused(f"url resolves to a {kind} address ({text}): only public hosts are called")
    if parts.scheme == "http":
        loopback = all(
            _kind(ipaddress.ip_address(a.split("%")[0])) == "loopback" for a in addresses
        )
        if not loopback:
            raise Refused("url must be https (http is allowed for loopback receivers only)")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, path, addresses[0])


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """POST once to a checked address; a redirect is an answer like any other, not followed."""
    import urllib3

    target = check_url(url)
    host_header = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
    if target.scheme == "https":
        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            server_hostname=target.host,  # SNI and certificate checks use the name,
            assert_hostname=target.host,  # while the socket goes to the checked address
            cert_reqs="CERT_REQUIRED",
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=False,
        )
    else:
        pool = urllib3.HTTPConnectionPool(
            target.address,
            target.port,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=False,
        )
    started = time.monotonic()
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": host_header},
            redirect=False,
            preload_content=False,
        )
        response.read(64 * 1024)  # answers are ignored; read a little so the socket closes cleanly
        response.release_conn()
    finally:
        pool.close()
    return Answer(response.status, int((time.monotonic() - started) * 1000))
