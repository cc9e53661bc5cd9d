"""One webhook attempt over HTTP: the URL checked against server-side request forgery, then a pinned POST.

The endpoint's host is resolved once per attempt; every address it resolves
to must be public (no private, loopback, link-local, shared, multicast or
reserved range, IPv4-mapped forms included), and the connection goes to the
checked address, never to a second lookup, so a DNS answer that changes
between check and connect (rebinding) gains nothing. TLS still verifies the
certificate for the host name. Redirects are never followed (http.client does
not), and each attempt has a connect timeout and a timeout per read. The
local stack allows loopback addresses and plain http to them
(`allow_loopback`); a deployed stack never does.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mailwright.webhooks.errors import ForbiddenTargetError, TransportError

Resolver = Callable[..., list[tuple[Any, ...]]]
# Enough of an answer's body to log why it failed; the rest is not read.
ANSWER_PREVIEW_BYTES = 1024
USER_AGENT = "mailwright-webhooks/1"


@dataclass(frozen=True)
class Target:
    """A checked endpoint: where to connect (`address`) and what to ask for (`host`, `path`)."""

    scheme: str
    host: str
    port: int
    path: str
    address: str

    @property
    def host_header(self) -> str:
        """The Host header: the port only when it is not the scheme's default."""
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True)
class Answer:
    """What the endpoint answered."""

    status: int
    headers: Mapping[str, str]
    preview: str = ""


def _unmapped(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def address_allowed(raw: str, *, allow_loopback: bool = False) -> bool:
    """Whether an IP address may be called: public unicast (plus loopback when `allow_loopback`)."""
    try:
        address = _unmapped(ipaddress.ip_address(raw.split("%", 1)[0]))
    except ValueError:
        return False
    if allow_loopback and address.is_loopback:
        return True
    return address.is_global and not address.is_multicast


def check_url(url: str, *, allow_loopback: bool = False) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of an endpoint URL, or ForbiddenTargetError; literal IPs are checked here too."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ForbiddenTargetError("bad_url", f"not a URL: {exc}") from None
    host = (parts.hostname or "").rstrip(".").lower()
    if not host or parts.username or parts.password:
        raise ForbiddenTargetError("bad_url", "the URL needs a host and may not carry credentials")
    literal = _literal(host)
    loopback_host = host == "localhost" or host.endswith(".localhost") or (literal is not None and literal.is_loopback)
    if parts.scheme == "http" and allow_loopback and loopback_host:
        pass
    elif parts.scheme != "https":
        raise ForbiddenTargetError("not_https", "webhook URLs must use https")
    if literal is not None and not address_allowed(str(literal), allow_loopback=allow_loopback):
        raise ForbiddenTargetError("private_address", f"{host} is not a public address")
    if loopback_host and not allow_loopback:
        raise ForbiddenTargetError("private_address", f"{host} is a loopback name")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return _unmapped(ipaddress.ip_address(host))
    except ValueError:
        return None


def resolve(url: str, *, allow_loopback: bool = False, resolver: Resolver = socket.getaddrinfo) -> Target:
    """Check the URL, resolve its host, and pick the address to connect to; ForbiddenTargetError if any is private."""
    scheme, host, port, path = check_url(url, allow_loopback=allow_loopback)
    try:
        infos = resolver(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ForbiddenTargetError("unresolvable", f"{host} does not resolve: {exc}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise ForbiddenTargetError("unresolvable", f"{host} resolves to no address")
    refused = [a for a in addresses if not address_allowed(a, allow_loopback=allow_loopback)]
    if refused:
        # Every answer must be public: one private answer is enough to make a rebinding attack work.
        raise ForbiddenTargetError("private_address", f"{host} resolves to a non-public address ({refused[0]})")
    return Target(scheme=scheme, host=host, port=port, path=path, address=addresses[0])


class HttpTransport:
    """Checks endpoint URLs (`resolve`) and posts to the checked Target: to its address, TLS for its host name."""

    def __init__(
        self,
        *,
        allow_loopback: bool = False,
        resolver: Resolver = socket.getaddrinfo,
        context: ssl.SSLContext | None = None,
    ) -> None:
        self.allow_loopback = allow_loopback
        self._resolver = resolver
        self._context = context or ssl.create_default_context()

    def resolve(self, url: str) -> Target:
        """The checked Target of a URL; ForbiddenTargetError when it may not be called."""
        return resolve(url, allow_loopback=self.allow_loopback, resolver=self._resolver)

    def post(
        self, target: Target, headers: Mapping[str, str], body: bytes, *, connect_timeout: float, read_timeout: float
    ) -> Answer:
        """One POST; TransportError when there is no HTTP answer (timeout, refused, TLS, garbage)."""
        sock: socket.socket | None = None
        try:
            sock = socket.create_connection((target.address, target.port), timeout=connect_timeout)
            sock.settimeout(read_timeout)
            if target.scheme == "https":
                sock = self._context.wrap_socket(sock, server_hostname=target.host)
            connection = http.client.HTTPConnection(target.host, target.port, timeout=read_timeout)
            connection.sock = sock  # already connected (to the checked address): http.client uses it as is
            connection.request(
                "POST",
                target.path,
                body=body,
                headers={
                    "Host": target.host_header,
                    "Content-Type": "application/json",
                    "User-Agent": USER_AGENT,
                    "Connection": "close",
                    **headers,
                },
            )
            response = connection.getresponse()
            preview = response.read(ANSWER_PREVIEW_BYTES)
            return Answer(
                status=response.status,
                headers={k.lower(): v for k, v in response.getheaders()},
                preview=preview.decode("utf-8", "replace"),
            )
        except TimeoutError as exc:
            raise TransportError("timeout", str(exc) or "timed out") from None
        except ConnectionRefusedError as exc:
            raise TransportError("connection_refused", str(exc)) from None
        except ssl.SSLError as exc:
            raise TransportError("tls_error", str(exc)) from None
        except http.client.HTTPException as exc:
            raise TransportError("bad_response", f"{type(exc).__name__}: {exc}") from None
        except OSError as exc:
            raise TransportError("connection_error", f"{type(exc).__name__}: {exc}") from None
        finally:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
