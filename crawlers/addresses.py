"""Which network addresses a source's crawl may reach (pure decisions, plus one resolver call).

A source's configured URLs (feed URL, start URLs, sitemaps, Telegram base URL) may point
anywhere, an intranet or loopback included: the operator chose them. Every other URL a crawl
meets comes from content (feed entry links, sitemap entries, robots.txt ``Sitemap:`` lines,
redirect targets) and must not reach an internal address, or a feed could make the service
probe its own network (SSRF). The rule:

* a URL whose host is one of the source's own configured hosts (any port) is allowed;
* any other host is allowed only if every address it resolves to is public: not loopback,
  private, link-local, shared (CGNAT), multicast, reserved or unspecified — IPv4-mapped IPv6
  addresses are judged as the IPv4 address they carry;
* only ``http`` and ``https`` are fetched at all.

Names are resolved with :func:`socket.getaddrinfo` and every address it returns is checked
(one internal address among public ones refuses the host).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from core.settings import SourceBase

__all__ = ["AddressPolicy", "Verdict", "configured_urls", "is_public_address", "resolve_host"]

_SCHEMES = frozenset({"http", "https"})


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address (``"93.184.216.34"``, ``"2606:2800::1"``).

    False for loopback, private, link-local, shared, multicast, reserved and unspecified
    addresses, for IPv4-mapped IPv6 forms of those, and for anything that is not an address.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            ip = mapped
    return bool(ip.is_global) and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_loopback)


def resolve_host(host: str, port: int | None) -> list[str]:
    """Every address ``host`` resolves to (TCP), in resolver order; raises :class:`OSError` on failure."""
    infos = socket.getaddrinfo(host, port or 80, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def configured_urls(source: SourceBase) -> list[str]:
    """Every http(s) URL in a source's configuration (its own fields, whatever its kind)."""
    urls: list[str] = []
    for value in source.model_dump().values():
        for item in value if isinstance(value, list | tuple) else (value,):
            if isinstance(item, str) and item.lower().startswith(("http://", "https://")):
                urls.append(item)
    return urls


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        return None


@dataclass(frozen=True)
class Verdict:
    """The decision for one URL: ``allowed``, else a short ``reason`` and a ``message`` saying why."""

    allowed: bool
    reason: str = ""
    message: str = ""


_ALLOWED = Verdict(True)


@dataclass(frozen=True)
class AddressPolicy:
    """The address rule for one source (see the module docstring)."""

    own_hosts: frozenset[str]
    """Lower-case host names (no port) of the source's configured URLs."""

    @classmethod
    def for_urls(cls, urls: Iterable[str]) -> AddressPolicy:
        """The policy of a source whose configured URLs are ``urls``."""
        hosts = {(urlsplit(u).hostname or "").lower().rstrip(".") for u in urls}
        return cls(frozenset(h for h in hosts if h))

    @classmethod
    def for_source(cls, source: SourceBase) -> AddressPolicy:
        """The policy of a configured source (:func:`configured_urls`)."""
        return cls.for_urls(configured_urls(source))

    def is_own(self, host: str) -> bool:
        """True if ``host`` is one of the source's configured hosts."""
        return host.lower().rstrip(".") in self.own_hosts

    def needs_resolution(self, url: str) -> str | None:
        """The host name to resolve before :meth:`judge` can decide, or None if it can decide now."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        if parts.scheme.lower() not in _SCHEMES or not host or self.is_own(host) or _literal(host):
            return None
        return host

    def judge(self, url: str, addresses: Sequence[str] | None = None) -> Verdict:
        """May ``url`` be fetched? ``addresses``: what its host resolved to (None: not resolved).

        A host name that needs resolving (:meth:`needs_resolution`) and has no addresses is
        refused with reason ``dns``.
        """
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            return Verdict(False, "unsupported_url", f"only http(s) URLs are fetched, not {scheme}:")
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            return Verdict(False, "unsupported_url", "the URL has no host")
        if self.is_own(host):
            return _ALLOWED
        literal = _literal(host)
        found = [literal] if literal else list(addresses or ())
        if not found:
            return Verdict(False, "dns", f"cannot resolve {host} to check its address")
        internal = [a for a in found if not is_public_address(a)]
        if internal:
            where = "is" if literal else f"resolves to {', '.join(internal[:3])}, which is"
            return Verdict(
                False,
                "address_refused",
                f"{host} {where} not a public address, and not this source's configured host",
            )
        return _ALLOWED
