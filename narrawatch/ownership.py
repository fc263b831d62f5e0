"""Who owns a document id: the first source that indexed its URL, unless a source whose own
configured host serves the URL arrives later (a takeover). Everyone else who carries the URL is
a sighting (:mod:`crawlers.sightings`) and never rewrites the record."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlsplit

from core.documents import Document, UpsertResult
from core.errors import UnknownNameError
from core.settings import Config
from core.sightings import Sighting

__all__ = ["Ownership"]


class Ownership:
    """The ownership rule for one config (sources' own hosts and outlet names, cached)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._homes: dict[str, tuple[frozenset[tuple[str, int | None]], str]] = {}

    def owned(
        self, docs: Sequence[Document], stored: dict[str, str]
    ) -> tuple[dict[str, Document], list[str], list[str]]:
        """The documents to write (one per id, from its owner), identical repeats, and takeovers.

        ``stored`` maps ids already in the index to their owner. An id nobody owns goes to the
        first source in the batch; later copies from the owner win (an edited post); copies from
        other sources are sightings only, unless the newcomer's own host serves the URL and the
        owner's does not (a takeover).
        """
        owner = dict(stored)
        unique: dict[str, Document] = {}
        repeats: list[str] = []
        for d in docs:
            current = owner.setdefault(d.id, d.source_id)
            if current != d.source_id and self.serves(d.source_id, d.url) and not self.serves(current, d.url):
                owner[d.id] = current = d.source_id
                unique.pop(d.id, None)
            if current != d.source_id:
                continue
            if d.id in unique and unique[d.id].content_hash == d.content_hash:
                repeats.append(d.id)
            unique[d.id] = d
        takeovers = [i for i, d in unique.items() if i in stored and stored[i] != d.source_id]
        return unique, repeats, takeovers

    def home(self, source_id: str) -> tuple[frozenset[tuple[str, int | None]], str]:
        """A source's own sites (host without ``www.``, port) and its outlet name ("" if unknown)."""
        cached = self._homes.get(source_id)
        if cached is not None:
            return cached
        try:
            src = self.config.source(source_id)
        except UnknownNameError:
            self._homes[source_id] = (frozenset(), "")
            return self._homes[source_id]
        urls = [str(u) for u in (getattr(src, "url", None), *getattr(src, "start_urls", ())) if u]
        sites = frozenset(site for site in (_site(u) for u in urls) if site[0])
        outlet = src.outlet or src.default_outlet
        if not outlet and urls:
            outlet = _site(urls[0])[0]
        self._homes[source_id] = (sites, outlet)
        return self._homes[source_id]

    def serves(self, source_id: str, url: str) -> bool:
        """True when the URL is on one of the source's own configured hosts (or a subdomain of one)."""
        host, port = _site(url)
        for home, home_port in self.home(source_id)[0]:
            if port == home_port and (host == home or host.endswith("." + home) or home.endswith("." + host)):
                return True
        return False

    def sightings(self, docs: Sequence[Document], result: UpsertResult, now: datetime) -> list[Sighting]:
        """Every acknowledged web document as a sighting of its source (publisher or carrier)."""
        acked = set(result.new) | set(result.updated) | set(result.unchanged) | set(result.carried)
        return [
            Sighting(
                document_id=d.id,
                source_id=d.source_id,
                outlet=self.home(d.source_id)[1] or d.outlet,
                url=d.url,
                title=d.title,
                published=d.published,
                first_seen=now,
                last_seen=now,
            )
            for d in docs
            if d.id in acked and d.id.startswith("u:")
        ]


def _site(url: str) -> tuple[str, int | None]:
    """(host without ``www.``, explicit non-default port or None) of a URL; ("", None) if it has none."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".").removeprefix("www.")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port == {"http": 80, "https": 443}.get(parts.scheme.lower()):
        port = None
    return host, port
