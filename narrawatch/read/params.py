"""Parameters of the read model: one pydantic definition for the API, the web pages and the CLI.

Query-parameter models ignore unknown parameters (other parameters share the query string);
JSON bodies (``narrawatch.api.schemas``) reject them. Limits live here so every surface refuses
the same requests.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from core.settings import parse_when

__all__ = [
    "EXPORT_MAX",
    "MAX_PAGE",
    "MAX_PAGE_SIZE",
    "MAX_QUERY_CHARS",
    "MAX_SEARCH_PAGE_SIZE",
    "AlertParams",
    "MatchParams",
    "PromoteRequest",
    "SearchParams",
    "ThemeParams",
    "TimeRange",
    "TraceRequest",
    "VerdictRequest",
    "parse_when",
    "split_list",
]

MAX_PAGE_SIZE = 100
MAX_ALERTS_PAGE = 10_000
"""Alert rows in one page (CLI, API and inbox alike; rows are small and read in SQL)."""
MAX_QUERY_CHARS = 500
MAX_PAGE = 5000
"""Deepest page number of a search (a page past the last result is empty)."""
MAX_SEARCH_PAGE_SIZE = 1000
"""Results on one search page (``page_size`` / ``k``; the CLI's ``-k`` has the same bound)."""
EXPORT_MAX = MAX_SEARCH_PAGE_SIZE
"""The CLI's ``-k`` bound (kept under its old name; exports stream without a cap)."""
_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)


def split_list(value: object) -> list[str]:
    """Repeated and/or comma-separated query values -> a clean list."""
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    out: list[str] = []
    for item in items:
        out.extend(part.strip() for part in str(item).split(",") if part.strip())
    return out


When = Annotated[datetime | None, BeforeValidator(parse_when)]
Names = Annotated[list[Annotated[str, Field(max_length=100)]], BeforeValidator(split_list), Field(max_length=50)]


class TimeRange(BaseModel):
    """``since`` (inclusive) and ``until`` (exclusive), sane."""

    model_config = ConfigDict(extra="ignore")

    since: When = Field(None, description="ISO date/time (UTC if naive) or a duration back from now, e.g. 7d")
    until: When = Field(None, description="ISO date/time (exclusive)")

    @model_validator(mode="after")
    def _sane(self) -> TimeRange:
        latest = datetime.now(UTC) + timedelta(days=2)
        for name in ("since", "until"):
            v: datetime | None = getattr(self, name)
            if v is not None and not (_EARLIEST <= v <= latest):
                raise ValueError(f"{name} must be between 1990-01-01 and now")
        if self.since and self.until and self.since >= self.until:
            raise ValueError("since must be before until")
        return self


class SearchParams(TimeRange):
    """A search: ``GET /api/v1/search``, the search page, ``narrawatch search``."""

    q: Annotated[
        str,
        Field(
            max_length=MAX_QUERY_CHARS,
            description='query in any language: words (all must match), "phrases", OR, -word/NOT,'
            " ( ), and field filters source: lang: outlet: kind: actor: country: tag:",
        ),
    ] = ""
    mode: Literal["hybrid", "keyword", "semantic"] = "hybrid"
    sort: Literal["relevance", "newest", "oldest", "views"] = "relevance"
    sources: Names = Field(default_factory=list)
    languages: Names = Field(default_factory=list)
    kinds: Names = Field(default_factory=list)
    outlets: Names = Field(default_factory=list)
    page: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 1
    page_size: Annotated[int, Field(ge=1, le=MAX_SEARCH_PAGE_SIZE)] = 20
    k: Annotated[
        int | None,
        Field(ge=1, le=MAX_SEARCH_PAGE_SIZE, description="results per page (the CLI's -k); overrides page_size"),
    ] = None

    @model_validator(mode="after")
    def _needs_query(self) -> SearchParams:
        if not self.q.strip():
            raise ValueError("q (the query) is required")
        return self


class MatchParams(TimeRange):
    """A page of a narrative's matches: ``GET /api/v1/narratives/{id}/matches``."""

    page: Annotated[int, Field(ge=1, le=10_000)] = 1
    page_size: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 20
    outlets: Names = Field(default_factory=list)
    languages: Names = Field(default_factory=list)


class AlertParams(TimeRange):
    """A page of alerts: ``GET /api/v1/alerts``, the inbox, ``narrawatch alerts list``."""

    rule: Annotated[str | None, Field(max_length=100)] = None
    severity: Literal["info", "warning", "critical"] | None = None
    unacked: bool = False
    limit: Annotated[int, Field(ge=1, le=MAX_ALERTS_PAGE)] = 50
    offset: Annotated[int, Field(ge=0, le=10_000_000)] = 0
    """Rows to skip (paging: the next page starts at ``offset + limit``)."""


class TraceRequest(TimeRange):
    """What to trace: exactly one of claim, url, document_id, narrative_id."""

    claim: Annotated[str | None, Field(max_length=MAX_QUERY_CHARS)] = None
    url: Annotated[str | None, Field(max_length=2000)] = None
    document_id: Annotated[str | None, Field(max_length=300)] = None
    narrative_id: Annotated[str | None, Field(max_length=100)] = None
    languages: Names = Field(default_factory=list)
    sources: Names = Field(default_factory=list)
    limit: Annotated[int, Field(ge=1, le=1000)] = 200

    @model_validator(mode="after")
    def _one_subject(self) -> TraceRequest:
        given = [n for n in ("claim", "url", "document_id", "narrative_id") if (getattr(self, n) or "").strip()]
        if len(given) != 1:
            raise ValueError("give exactly one of claim, url, document_id, narrative_id")
        if self.url and not self.url.strip().lower().startswith(("http://", "https://")):
            raise ValueError("url must be an http(s) URL")
        return self


class ThemeParams(TimeRange):
    """Emerging themes: ``GET /api/v1/themes``, the themes page, ``narrawatch themes``. Without
    ``since`` the window is the 7 days up to the newest stored document (not the wall clock)."""

    min_size: Annotated[int, Field(ge=2, le=1000, description="distinct texts a theme needs")] = 5
    max_themes: Annotated[int, Field(ge=1, le=100, description="themes returned, best first")] = 20


class PromoteRequest(BaseModel):
    """Promote a theme: ``POST /api/v1/themes/{id}/promote`` and the themes page form."""

    model_config = ConfigDict(extra="forbid")
    narrative_id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
    since: When = None
    until: When = None
    min_size: Annotated[int, Field(ge=2, le=1000)] = 5


class VerdictRequest(BaseModel):
    """Confirm or reject a match (``POST /api/v1/matches/{id}/verdict``, the match form); the
    analyst is the caller's name."""

    model_config = ConfigDict(extra="forbid")
    verdict: Literal["confirmed", "rejected"]
    note: Annotated[str, Field(max_length=2000)] = ""
