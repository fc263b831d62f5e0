"""Configuration: pydantic models for the YAML files under a config directory, and the loader.

Layout of a config directory (every file optional except at least one source)::

    DIR/service.yaml            ServiceSettings: data_dir, crawl, embedding, index, logging
    DIR/sources.yaml            {sources: [...]}   and/or
    DIR/sources/*.yaml          {sources: [...]}

Unknown keys are errors, secrets come only from environment variables (fields ending in
``_env`` name the variable), and :func:`load_config` collects every problem and raises one
:class:`~core.errors.ConfigError` whose issues read ``file:path: message``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, IPvAnyNetwork, ValidationError, field_validator

from core.errors import ConfigError, ConfigIssue, UnknownNameError
from core.registry import Registry

__all__ = [
    "ACTOR_TYPES",
    "MAX_DURATION",
    "SOURCES_INCLUDE_DIR",
    "SOURCE_KINDS",
    "ApiSettings",
    "ArchiveSettings",
    "Config",
    "CrawlSettings",
    "Duration",
    "ElasticsearchSettings",
    "EmbeddingSettings",
    "FeedSource",
    "IndexSettings",
    "PostgresSettings",
    "RecheckSettings",
    "ServiceSettings",
    "SiteSource",
    "SourceBase",
    "SourceKind",
    "StatePostgresSettings",
    "StateSettings",
    "StrictModel",
    "TelegramSource",
    "actor_label",
    "display_path",
    "format_loc",
    "load_config",
    "parse_duration",
    "parse_when",
    "read_yaml",
    "register_section",
    "validation_issues",
]

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

MAX_DURATION = timedelta(days=3650)
"""The longest duration accepted anywhere (config keys, ``--since 30d``, API ``since=``): ten years.

Long enough for any interval or look-back, short enough that ``now - d`` and the detectors'
``window x baseline_windows`` stay far inside the dates Python (and SQLite, tantivy) represent.
"""


class _TooLong(ValueError):
    """A well-formed duration beyond :data:`MAX_DURATION`."""


def _bounded(seconds: float, value: object) -> timedelta:
    if math.isnan(seconds):
        raise ValueError(f"invalid duration {value!r}; use e.g. '30s', '15m', '1h30m', '7d'")
    if seconds > MAX_DURATION.total_seconds():
        raise _TooLong(f"duration {value!r} is too long; at most {MAX_DURATION.days}d (ten years)")
    return timedelta(seconds=seconds)


def parse_duration(value: object) -> timedelta:
    """Parse ``"15m"``, ``"1h30m"``, ``"2.5s"``, ``"7d"`` or a number of seconds (0 .. :data:`MAX_DURATION`)."""
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError("a duration cannot be negative")
        return _bounded(value.total_seconds(), value)
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '15m'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return _bounded(float(value), value)
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        pos = 0
        total = 0.0
        for m in _DURATION_RE.finditer(text):
            if m.start() != pos:
                break
            total += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if text and pos == len(text):
            return _bounded(total, value)
        raise ValueError(f"invalid duration {value!r}; use e.g. '30s', '15m', '1h30m', '7d'")
    raise ValueError("a duration is a number of seconds or a string like '15m'")


def parse_when(value: object, now: datetime | None = None) -> datetime | None:
    """An ISO date/time (naive = UTC) or a duration back from ``now`` (``7d``, ``12h``) -> aware UTC.

    Empty or None -> None. Shared by the CLI's ``--since/--until`` and the HTTP API.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            delta = parse_duration(text)
        except _TooLong:
            raise
        except ValueError:
            raise ValueError(f"{text!r} is neither an ISO date/time nor a duration like '7d'") from None
        try:
            return (now or datetime.now(UTC)) - delta
        except OverflowError:
            raise ValueError(f"{text!r} reaches before the year 1") from None
    dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is past the largest datetime in UTC
        raise ValueError(f"{text!r} is out of the range of dates") from None


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
"""A typed duration field: accepts ``"15m"``-style strings or seconds."""


class StrictModel(BaseModel):
    """Base of every config model: unknown keys rejected, instances immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


_ID_RE = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
_SECRET_HINT = "secrets are read from environment variables only"


ActorType = Literal[
    "state_media",
    "state_affiliated",
    "independent",
    "exile_media",
    "official",
    "anonymous_channel",
    "blogger",
    "other",
]

ACTOR_TYPES: tuple[str, ...] = get_args(ActorType)
"""Actor types of a source: state media (RT, Rossiya 24), state-affiliated (owned or funded by a
state but not its broadcaster), independent, exile media (independent outlets working from
abroad), official (a government body or official's own channel), anonymous channel, blogger,
other."""


def actor_label(actor: str | None) -> str:
    """How an actor type reads for people: ``state_media`` -> ``state media``, ``state_affiliated`` ->
    ``state-affiliated``; None or "" -> ""."""
    if not actor:
        return ""
    return "state-affiliated" if actor == "state_affiliated" else actor.replace("_", " ")


class SourceBase(StrictModel):
    """Fields every source kind has."""

    id: Annotated[str, Field(pattern=_ID_RE, description="unique short id (a-z, 0-9, _ . -)")]
    kind: str
    every: Duration = timedelta(minutes=15)
    jitter: Duration | None = None
    """Random delay added to each scheduled run; default 10% of ``every`` (at most 5 min)."""
    enabled: bool = True
    language: str | None = None
    """Expected language (ISO 639-1); used when identification is unsure."""
    outlet: str | None = None
    """Outlet name shown to users; default: the host (sites, feeds) or ``t.me/<channel>``."""
    tags: tuple[str, ...] = ()
    """Free labels for analysts (``tag:`` in the query syntax)."""
    actor: ActorType | None = None
    """What kind of outlet this is (see :data:`ACTOR_TYPES`); shown on alerts and filterable."""
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    """Country of focus, ISO 3166-1 alpha-2 (``RU``, ``KZ``, ``UA``...)."""
    owner: str | None = None
    """Who owns or runs the outlet, as analysts know it (free text)."""
    archive: bool = True
    """Keep the WARC records of this source's responses (``service.archive``); false: hash only."""

    @field_validator("every")
    @classmethod
    def _positive_every(cls, v: timedelta) -> timedelta:
        if v < timedelta(seconds=1):
            raise ValueError("must be at least 1s")
        return v

    @property
    def effective_jitter(self) -> timedelta:
        """The jitter to apply when none is configured."""
        if self.jitter is not None:
            return self.jitter
        return min(self.every / 10, timedelta(minutes=5))

    @property
    def disabled_reason(self) -> str:
        """Why a valid source cannot run now (a missing token: ``"vk needs X in the environment;
        disabled until set"``), else "". Such a source is not scheduled nor crawled by default,
        ``config check`` and ``sources`` say why; read at call time, so setting it needs no reload."""
        return ""

    @property
    def default_outlet(self) -> str:
        """The kind's outlet name when ``outlet`` is unset; "" means each document's host."""
        return ""

    @property
    def outlet_label(self) -> str:
        """The outlet shown for the source as a whole (health, source lists): ``outlet``, else
        the kind's default outlet, else the source id."""
        return self.outlet or self.default_outlet or self.id


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError(f"not an http(s) URL: {value!r}")
    return value


HttpUrl = Annotated[str, BeforeValidator(lambda v: _http_url(str(v)) if isinstance(v, str) else v)]


class FeedSource(SourceBase):
    """An RSS 0.9x/1.0/2.0, Atom or JSON Feed; each new entry's page is fetched and extracted."""

    kind: Literal["feed"] = "feed"
    url: HttpUrl
    fetch_articles: bool = True
    """Fetch and extract each new entry's page; off: keep the entry's own content/summary."""
    max_entries: Annotated[int, Field(ge=1, le=10_000)] = 200


class TelegramSource(SourceBase):
    """A public Telegram channel read from its web preview ``<base_url>/s/<channel>``."""

    kind: Literal["telegram"] = "telegram"
    channel: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{3,64}$")]
    base_url: HttpUrl = "https://t.me"
    max_pages: Annotated[int, Field(ge=1, le=1000)] = 5
    """How many preview pages to walk back (``?before=<id>``) on a run; stops early at seen posts."""

    @property
    def default_outlet(self) -> str:
        """``t.me/<channel>``: every post of a channel has the channel as its outlet."""
        return f"t.me/{self.channel}"


class SiteSource(SourceBase):
    """A website: (news) sitemaps when present, else link-following within allow/deny patterns."""

    kind: Literal["site"] = "site"
    start_urls: Annotated[tuple[HttpUrl, ...], Field(min_length=1)]
    allow: tuple[str, ...] = ()
    """Regular expressions; a followed or extracted URL must match one (if any are given)."""
    deny: tuple[str, ...] = ()
    max_depth: Annotated[int, Field(ge=0, le=10)] = 2
    max_pages: Annotated[int, Field(ge=1, le=100_000)] = 200
    sitemaps: tuple[HttpUrl, ...] | None = None
    """Sitemap URLs; default: those robots.txt names, then ``/sitemap.xml``."""
    use_sitemaps: bool = True

    @field_validator("allow", "deny")
    @classmethod
    def _regexes_compile(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in v:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        return v


@dataclass(frozen=True)
class SourceKind:
    """A registered source kind: its config model and the crawler that fetches it.

    ``spider`` imports and returns the crawler class (a ``crawlers`` Scrapy spider) on demand:
    core cannot import crawlers, and loading a config must not import Scrapy. The built-ins are
    registered by :func:`crawlers.sources.register_builtins`; a plugin adds its own record::

        SOURCE_KINDS.add("mykind", SourceKind("mykind", MySource, lambda: MySpider))
    """

    name: str
    settings: type[SourceBase]
    spider: Callable[[], type]


SOURCE_KINDS: Registry[SourceKind] = Registry("source kind")
"""Source kinds by their ``kind:`` name: one registry for config model and crawler alike."""


class CrawlSettings(StrictModel):
    """How we fetch: politeness, retries, limits. Applies to every source."""

    user_agent: str = "narrawatch/0.1 (media monitoring; +https://github.com/narrawatch/narrawatch)"
    obey_robots: bool = True
    concurrency_per_domain: Annotated[int, Field(ge=1, le=64)] = 2
    download_delay: Duration = timedelta(seconds=0.5)
    autothrottle: bool = True
    retry_times: Annotated[int, Field(ge=0, le=20)] = 3
    backoff_base: Duration = timedelta(seconds=1)
    backoff_max: Duration = timedelta(minutes=2)
    timeout: Duration = timedelta(seconds=30)
    max_body_bytes: Annotated[int, Field(ge=1024)] = 10 * 1024 * 1024
    max_redirects: Annotated[int, Field(ge=0, le=50)] = 5
    max_parallel_sources: Annotated[int, Field(ge=1, le=64)] = 4
    passage_max_words: Annotated[int, Field(ge=16, le=1000)] = 120
    reach_refresh: Duration = timedelta(hours=48)
    """Posts younger than this (by publication time) get their reach (Telegram views, reactions)
    re-read on later passes, without re-embedding or re-matching; ``0s`` freezes reach at first fetch."""
    max_run_time: Duration = timedelta(minutes=30)
    """Wall-clock budget of one crawl run per ``max_parallel_sources`` sources it crawls; past it
    the crawler process is stopped (SIGTERM, then SIGKILL) and its unfinished sources fail."""
    lease: Duration = timedelta(minutes=2)
    """How long a worker's claim on a source lasts without renewal (``narrawatch run``): the worker
    renews it every third of this while the crawl runs, so a killed worker's sources are taken
    over by another worker within one lease period (:mod:`narrawatch.scheduler`)."""

    @field_validator("lease")
    @classmethod
    def _sane_lease(cls, v: timedelta) -> timedelta:
        if not timedelta(seconds=1) <= v <= timedelta(hours=1):
            raise ValueError("must be between 1s and 1h")
        return v

    @field_validator("max_run_time")
    @classmethod
    def _sane_run_time(cls, v: timedelta) -> timedelta:
        if not timedelta(seconds=1) <= v <= timedelta(days=1):
            raise ValueError("must be between 1s and 1d")
        return v


class EmbeddingSettings(StrictModel):
    """Which embedding model makes the vectors (see index.embed for names)."""

    model: str = "use-multilingual-v3"
    """``use-multilingual-v3`` (offline default), ``hashing`` (tests), or any sentence-transformers
    model name or local path, optionally prefixed ``st:``."""
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 64
    threads: Annotated[int, Field(ge=1, le=256)] | None = None
    query_prefix: str = ""
    document_prefix: str = ""


class ElasticsearchSettings(StrictModel):
    """Connection to an Elasticsearch cluster. Secrets via ``*_env`` variable names."""

    urls: tuple[HttpUrl, ...] = ("http://127.0.0.1:9200",)
    urls_env: str | None = "NARRAWATCH_ES_URL"
    """If this variable is set, its comma-separated URLs replace ``urls``."""
    index_prefix: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")] = "narrawatch"
    username: str | None = None
    password_env: str | None = "NARRAWATCH_ES_PASSWORD"
    api_key_env: str | None = "NARRAWATCH_ES_API_KEY"
    ca_certs: str | None = None
    verify_certs: bool = True
    request_timeout: Duration = timedelta(seconds=30)
    max_retries: Annotated[int, Field(ge=0, le=20)] = 3
    bulk_batch: Annotated[int, Field(ge=1, le=10_000)] = 500

    def resolved_urls(self) -> tuple[str, ...]:
        """``urls``, or the URLs from the ``urls_env`` variable when it is set."""
        if self.urls_env and os.environ.get(self.urls_env):
            return tuple(u.strip() for u in os.environ[self.urls_env].split(",") if u.strip())
        return self.urls


class PostgresSettings(StrictModel):
    """Connection to PostgreSQL (with pgvector) for ``index.backend: postgresql``.

    The URL, password included, comes only from the environment variable named by ``url_env``."""

    url_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = "NARRAWATCH_PG_URL"
    pool_size: Annotated[int, Field(ge=1, le=64)] = 4
    statement_timeout: Duration = timedelta(seconds=30)
    ann: Literal["ivfflat", "hnsw"] = "ivfflat"
    """Approximate-nearest-neighbour index on passage vectors: ``ivfflat`` (default: cheap inserts,
    trained once the set holds ``ann_min_rows`` passages and retrained as it grows 4x) or ``hnsw``
    (maintained on every insert: faster queries, about 5x slower upserts here; docs/postgresql.md)."""
    ann_min_rows: Annotated[int, Field(ge=1)] = 20_000
    """``ivfflat``: train the index once the table set holds this many passages (exact scans below)."""
    probe_fraction: Annotated[float, Field(gt=0, le=1)] = 0.1
    """``ivfflat``: share of the index's lists a semantic query scans (``ivfflat.probes``)."""
    ef_search: Annotated[int, Field(ge=1, le=1000)] = 100
    """``hnsw``: ``hnsw.ef_search`` for semantic queries the HNSW index answers (raised to the window asked)."""
    table_prefix: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,29}$")] = "narrawatch"
    """Tables are ``<prefix>_meta`` and ``<prefix>_<space hash>[_g<n>]_{documents,passages}``."""


class IndexSettings(StrictModel):
    """Where documents live: ``embedded`` (default, on disk), ``elasticsearch`` or ``postgresql``."""

    backend: str = "embedded"
    path: str | None = None
    """Embedded backend directory; default ``<data_dir>/index``."""
    vector_precision: Literal["float32", "float16"] = "float16"
    """Embedded backend: dtype of the in-memory kNN matrix (float16 halves its RAM; see docs/index.md)."""
    elasticsearch: ElasticsearchSettings = ElasticsearchSettings()
    postgresql: PostgresSettings = PostgresSettings()


class StatePostgresSettings(StrictModel):
    """The shared state schema for ``state.backend: postgresql`` (crawl state and source leases,
    matches and verdicts, the outbox, API tokens). The URL, password included, comes only from
    the environment variable named by ``url_env`` (the same server as the index may serve both)."""

    url_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = "NARRAWATCH_PG_URL"
    pool_size: Annotated[int, Field(ge=1, le=64)] = 4
    statement_timeout: Duration = timedelta(seconds=30)
    schema_name: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = "narrawatch_state"
    """PostgreSQL schema holding the state tables (created if missing); every worker names the same one."""


class StateSettings(StrictModel):
    """Where the stores live: ``sqlite`` (default: files in ``data_dir``, one box) or ``postgresql``
    (one schema shared by every worker of a deployment)."""

    backend: str = "sqlite"
    postgresql: StatePostgresSettings = StatePostgresSettings()


class ApiSettings(StrictModel):
    """The HTTP API and web UI (``narrawatch serve``; also started by ``narrawatch run``)."""

    enabled: bool = True
    """Start the API inside ``narrawatch run``."""
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8765
    trusted_proxies: tuple[IPvAnyNetwork, ...] = ()
    """Addresses or networks of the reverse proxies whose ``X-Forwarded-For``/``-Proto`` are believed
    (client address, https); none by default: forwarded headers from anyone else are ignored."""
    metrics_public: bool | None = None
    """``/metrics`` without a token: ``true`` anyone, ``false`` never; unset: only direct loopback clients."""
    auth_failures_per_minute: Annotated[int, Field(ge=1, le=10000)] = 10
    """Failed logins / bad tokens per client address per minute before it gets 429 (in memory, per process)."""
    analyst_private_hosts: bool = False
    """Let analysts add sources (web UI, API) whose host is internal (loopback, private, link-local):
    off by default, since a configured host is trusted by the crawler's address guard."""


class ArchiveSettings(StrictModel):
    """WARC archiving of fetched responses under ``<data_dir>/warc/`` (see docs/evidence.md)."""

    enabled: bool = True
    """Write request + response records of every response that yields a document."""
    max_file_bytes: Annotated[int, Field(ge=1024)] = 100 * 1024 * 1024
    """A WARC file past this size is closed and the next record starts a new file."""


class RecheckSettings(StrictModel):
    """Re-checks of recent items for edits and deletions (see docs/recheck.md)."""

    enabled: bool = True
    after: Annotated[tuple[Duration, ...], Field(min_length=1, max_length=32)] = (
        timedelta(hours=1),
        timedelta(hours=6),
        timedelta(hours=24),
        timedelta(days=7),
    )
    """Ages (since first seen) at which an item is fetched again; after the last one it is left alone."""
    every: Duration = timedelta(minutes=15)
    """How often the service looks for items due for a re-check."""
    max_per_pass: Annotated[int, Field(ge=1, le=100_000)] = 200
    """At most this many items are re-fetched per pass (the oldest due first); the rest wait."""

    @field_validator("after")
    @classmethod
    def _increasing(cls, v: tuple[timedelta, ...]) -> tuple[timedelta, ...]:
        if any(d <= timedelta(0) for d in v) or list(v) != sorted(set(v)):
            raise ValueError("must be positive and strictly increasing, e.g. [1h, 6h, 24h, 7d]")
        return v


class ServiceSettings(StrictModel):
    """``service.yaml``: everything that is not a source, narrative or alert rule."""

    data_dir: str = "data"
    """State, index and outbox directory; relative paths are relative to the config directory."""
    crawl: CrawlSettings = CrawlSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    index: IndexSettings = IndexSettings()
    state: StateSettings = StateSettings()
    api: ApiSettings = ApiSettings()
    archive: ArchiveSettings = ArchiveSettings()
    recheck: RecheckSettings = RecheckSettings()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"


@dataclass(frozen=True)
class Config:
    """A loaded, validated configuration directory."""

    root: Path
    service: ServiceSettings
    sources: tuple[SourceBase, ...]
    files: tuple[Path, ...] = field(default=())
    extra: dict[str, Any] = field(default_factory=dict)
    """Sections added by other packages' loaders (narratives, alerts)."""

    @property
    def data_dir(self) -> Path:
        """Absolute data directory."""
        p = Path(self.service.data_dir).expanduser()
        return p if p.is_absolute() else (self.root / p).resolve()

    @property
    def index_path(self) -> Path:
        """Absolute embedded-index directory."""
        if self.service.index.path:
            p = Path(self.service.index.path).expanduser()
            return p if p.is_absolute() else (self.root / p).resolve()
        return self.data_dir / "index"

    def source(self, source_id: str) -> SourceBase:
        """The source with this id, or :class:`UnknownNameError` listing the ids."""
        for s in self.sources:
            if s.id == source_id:
                return s
        raise UnknownNameError("source", source_id, [s.id for s in self.sources])


def format_loc(loc: tuple[int | str, ...]) -> str:
    """``("sources", 2, "every")`` -> ``sources[2].every``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def validation_issues(file: str, exc: ValidationError, prefix: tuple[int | str, ...] = ()) -> list[ConfigIssue]:
    """Turn a pydantic ValidationError into located issues."""
    issues = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            key = str(loc[-1]) if loc else ""
            msg = "unknown key"
            if any(s in key.lower() for s in ("password", "token", "secret", "api_key")):
                msg += f" ({_SECRET_HINT}: use a '*_env' key naming the variable)"
        issues.append(ConfigIssue(file, format_loc(prefix + loc), msg))
    return issues


def read_yaml(path: Path, root: Path) -> tuple[Any, list[ConfigIssue]]:
    """Parse one YAML file; on failure return an issue with the line number."""
    rel = display_path(path, root)
    try:
        with path.open("r", encoding="utf-8") as fh:
            return yaml.safe_load(fh), []
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        return None, [ConfigIssue(rel, where, f"invalid YAML: {problem}")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [ConfigIssue(rel, "", f"cannot read: {exc}")]


def display_path(path: Path, root: Path) -> str:
    """``path`` relative to the config root when it is inside it (for `file:path: message` errors)."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


SOURCES_INCLUDE_DIR = "sources.d"
"""``<data_dir>/sources.d/*.yaml``: sources the service itself wrote (``sources import``, the web UI's
"add source"), read after the config directory's own source files, same format and validation.
They live in the data directory because the config directory may be read-only (docker mounts it so)."""


def _source_files(root: Path, data_dir: Path | None = None) -> Iterator[Path]:
    single = root / "sources.yaml"
    if single.exists():
        yield single
    folder = root / "sources"
    if folder.is_dir():
        yield from sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    if data_dir is not None and (data_dir / SOURCES_INCLUDE_DIR).is_dir():
        yield from sorted((data_dir / SOURCES_INCLUDE_DIR).glob("*.yaml"))


def _load_sources(
    root: Path, issues: list[ConfigIssue], data_dir: Path | None = None
) -> tuple[list[SourceBase], list[Path]]:
    sources: list[SourceBase] = []
    files: list[Path] = []
    seen: dict[str, str] = {}
    for path in _source_files(root, data_dir):
        files.append(path)
        rel = display_path(path, root)
        data, errs = read_yaml(path, root)
        issues.extend(errs)
        if errs or data is None:
            continue
        if not isinstance(data, dict) or set(data) != {"sources"}:
            bad = sorted(set(data) - {"sources"}) if isinstance(data, dict) else []
            msg = f"unknown key(s) {bad}; " if bad else ""
            issues.append(ConfigIssue(rel, "", msg + "expected a mapping with one key 'sources'"))
            if not isinstance(data, dict) or "sources" not in data:
                continue
        entries = data["sources"]
        if not isinstance(entries, list):
            issues.append(ConfigIssue(rel, "sources", "must be a list"))
            continue
        for i, entry in enumerate(entries):
            where = ("sources", i)
            if not isinstance(entry, dict):
                issues.append(ConfigIssue(rel, format_loc(where), "each source must be a mapping"))
                continue
            kind = entry.get("kind")
            if not isinstance(kind, str):
                issues.append(
                    ConfigIssue(
                        rel,
                        format_loc((*where, "kind")),
                        f"missing; one of: {', '.join(SOURCE_KINDS.names())}",
                    )
                )
                continue
            try:
                model = SOURCE_KINDS.get(kind).settings
            except UnknownNameError as exc:
                issues.append(ConfigIssue(rel, format_loc((*where, "kind")), str(exc)))
                continue
            try:
                src = model.model_validate(entry)
            except ValidationError as exc:
                issues.extend(validation_issues(rel, exc, where))
                continue
            if src.id in seen:
                issues.append(
                    ConfigIssue(rel, format_loc((*where, "id")), f"duplicate id {src.id!r} (also in {seen[src.id]})")
                )
                continue
            seen[src.id] = rel
            sources.append(src)
    return sources, files


ConfigSection = Any
_SECTION_LOADERS: dict[str, Any] = {}


def register_section(name: str, loader: Any) -> None:
    """Let another package load its own section (e.g. ``narratives``) into :attr:`Config.extra`.

    ``loader(root: Path, issues: list[ConfigIssue]) -> Any`` appends problems to ``issues``.
    """
    _SECTION_LOADERS[name] = loader


def load_config(root: Path | str, *, require_sources: bool = True) -> Config:
    """Load and validate a config directory, raising one ConfigError with every issue."""
    root = Path(root).resolve()
    issues: list[ConfigIssue] = []
    if not root.is_dir():
        raise ConfigError([ConfigIssue(str(root), "", "config directory does not exist")])
    service = ServiceSettings()
    files: list[Path] = []
    service_file = root / "service.yaml"
    if service_file.exists():
        files.append(service_file)
        data, errs = read_yaml(service_file, root)
        issues.extend(errs)
        if not errs and data is not None:
            try:
                service = ServiceSettings.model_validate(data)
            except ValidationError as exc:
                issues.extend(validation_issues("service.yaml", exc))
    data_dir = Path(service.data_dir).expanduser()
    data_dir = data_dir if data_dir.is_absolute() else (root / data_dir).resolve()
    sources, source_files = _load_sources(root, issues, data_dir)
    files.extend(source_files)
    if require_sources and not source_files:
        issues.append(ConfigIssue(str(root), "", "no sources.yaml or sources/*.yaml found"))
    extra: dict[str, Any] = {}
    for name, loader in _SECTION_LOADERS.items():
        extra[name] = loader(root, issues)
    if issues:
        raise ConfigError(issues)
    return Config(root=root, service=service, sources=tuple(sources), files=tuple(files), extra=extra)
