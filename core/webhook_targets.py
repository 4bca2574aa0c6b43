"""Where a webhook may be delivered (the SSRF guard), and a connection pinned to the checked address.

A callback URL must be http(s) and every address its host resolves to must be public, unless
the host (its name, an IP or a CIDR holding it) is in the `webhook_allow_hosts` setting. The
delivery connects to the address that was checked, so a DNS answer that changes between the
check and the connection (rebinding) cannot move it onto a private address.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from humanseg.core.errors import HumansegError

MAX_URL_CHARS = 2000
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(HumansegError):
    """The callback URL is malformed or points where webhooks may not go."""


@dataclass(frozen=True)
class Target:
    """A checked callback: where to connect, and what to send as Host, path and SNI."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


def _allowed(host: str, addr: IPAddress, allow: Iterable[str]) -> bool:
    for entry in allow:
        entry = entry.strip().lower().strip("[]")
        if not entry:
            continue
        if entry == host:
            return True
        try:
            if addr in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue  # a name that is not this host
    return False


def _public(addr: IPAddress) -> bool:
    # An IPv4-mapped IPv6 address (::ffff:10.0.0.1) is judged as the IPv4 address it carries.
    mapped = getattr(addr, "ipv4_mapped", None)
    return (mapped or addr).is_global


def parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path+query) of an http(s) URL without credentials; TargetRefused else."""
    if not url or len(url) > MAX_URL_CHARS:
        raise TargetRefused(f"the URL must be 1 to {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("the URL must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise TargetRefused("the URL must not carry credentials")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80), path


def resolve(url: str, allow: Iterable[str]) -> Target:
    """Check url and its host's addresses; the Target to connect to, or TargetRefused."""
    scheme, host, port, path = parse(url)
    allow = tuple(allow)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"cannot resolve {host}: {exc}") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for addr in addresses:
        if not _public(addr) and not _allowed(host, addr, allow):
            raise TargetRefused(f"{host} resolves to {addr}, which is not a public address "
                                "(allow it with HUMANSEG_WEBHOOK_ALLOW_HOSTS)")
    return Target(scheme, host, port, path, str(addresses[0]))


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float):
        self._tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=self._tls)
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is checked against the URL's host name, not the address.
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def post(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST body to the checked address (redirects are not followed); returns the status."""
    cls = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    conn = cls(target, timeout)
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read(64 * 1024)  # a little of the answer, then the connection goes
        return resp.status
    finally:
        conn.close()
