"""One exception tree for the whole service.

Every error narrawatch raises on purpose derives from :class:`NarrawatchError`, so callers
can catch ours without catching programming errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "AlertDeliveryError",
    "ConfigError",
    "ConfigIssue",
    "ConflictError",
    "CrawlError",
    "EmbeddingError",
    "EmbeddingSpaceMismatch",
    "EvidenceError",
    "ExtractionError",
    "FetchError",
    "IndexBackendError",
    "IndexNotCreated",
    "IndexUnavailable",
    "InvalidRequestError",
    "NarrawatchError",
    "NotFoundError",
    "ParseError",
    "QuerySyntaxError",
    "StateUnavailable",
    "UnknownFilterValue",
    "UnknownNameError",
    "UnsupportedURL",
]


class NarrawatchError(Exception):
    """Base of every error narrawatch raises on purpose."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem found in the configuration, located as ``file:path``."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.path}" if self.path else self.file
        return f"{where}: {self.message}"


class ConfigError(NarrawatchError):
    """The configuration is invalid; carries every issue found, not just the first."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues: tuple[ConfigIssue, ...] = tuple(issues)
        super().__init__("\n".join(str(i) for i in self.issues) or "invalid configuration")


class UnknownNameError(NarrawatchError, KeyError):
    """A registry lookup by short name failed; the message lists the known names."""

    def __init__(self, what: str, name: str, known: Iterable[str]) -> None:
        self.what = what
        self.name = name
        self.known = tuple(sorted(known))
        super().__init__(f"unknown {what} {name!r}; known: {', '.join(self.known) or '(none)'}")

    def __str__(self) -> str:  # KeyError would repr() the message otherwise
        return str(self.args[0])


class NotFoundError(NarrawatchError, LookupError):
    """A record asked for by id does not exist (a document, narrative, theme); HTTP 404."""


class ConflictError(NarrawatchError):
    """A request clashes with what exists (a narrative id already taken); HTTP 409."""


class InvalidRequestError(NarrawatchError, ValueError):
    """A request is well-formed but cannot be answered as asked (a trace of nothing); HTTP 422."""


class QuerySyntaxError(NarrawatchError, ValueError):
    """A search query does not parse (:mod:`core.query`); the message points at the position; HTTP 400."""

    def __init__(self, message: str, query: str, position: int) -> None:
        self.query = query
        self.position = position
        self.reason = message
        pointer = f"{query}\n{' ' * position}^"
        super().__init__(f"query syntax: {message} at position {position + 1}\n{pointer}")


class UnknownFilterValue(NarrawatchError, ValueError):
    """A search filter names a value that does not exist (a source, language, kind...); the
    message lists the known ones; HTTP 400."""

    def __init__(self, what: str, values: Iterable[str], known: Iterable[str]) -> None:
        self.what = what
        self.values = tuple(values)
        self.known = tuple(sorted(known))
        super().__init__(
            f"unknown {what} {', '.join(repr(v) for v in self.values)}; known: {', '.join(self.known) or '(none)'}"
        )


class CrawlError(NarrawatchError):
    """Base of errors while collecting content."""


class FetchError(CrawlError):
    """A URL could not be fetched (dead host, timeout, HTTP error after retries)."""


class ParseError(CrawlError):
    """A fetched body could not be parsed (malformed feed, not a Telegram preview page, ...)."""


class UnsupportedURL(ParseError, ValueError):
    """A link cannot name a document: not ``http(s)`` (``javascript:``, ``data:``, ``mailto:`` ...) or no host.

    ``reason`` is the drop reason crawlers count (``unsupported_url``).
    """

    reason = "unsupported_url"

    def __init__(self, url: str, why: str) -> None:
        self.url = url
        self.why = why
        super().__init__(f"{why}: {url[:200]!r}")


class ExtractionError(CrawlError):
    """No usable main text could be extracted from a page."""


class EmbeddingError(NarrawatchError):
    """An embedding model could not be loaded or failed to embed."""


class IndexBackendError(NarrawatchError):
    """Base of document-index errors."""


class IndexUnavailable(IndexBackendError):
    """The index backend cannot be reached or refused our credentials."""


class IndexNotCreated(IndexUnavailable):
    """A read-only open found no index: nothing has been ingested yet (a writer creates it)."""


class EmbeddingSpaceMismatch(IndexBackendError):
    """Vectors from one embedding space were offered to an index built for another."""


class StateUnavailable(NarrawatchError):
    """The shared state database (``state.backend: postgresql``) cannot be reached or opened."""


class AlertDeliveryError(NarrawatchError):
    """An alert channel could not deliver a message (it will be retried from the outbox)."""


class EvidenceError(NarrawatchError):
    """Archived evidence could not be written, read back or verified (WARC files, evidence packs)."""
