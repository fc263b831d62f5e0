"""State backends by short name: where the crawl state, matches, outbox and tokens live.

``state.backend`` names one (``STATE_BACKENDS``; an unknown name fails listing the known ones):

* ``sqlite`` (default): one file per store in ``data_dir`` (``state.db``, ``matches.sqlite``, the
  outbox file, ``tokens.sqlite``); "one at a time" locks are ``flock`` files in
  ``<data_dir>/locks/``. One box: every process of the deployment shares the files.
* ``postgresql``: every store in one schema (``state.postgresql.schema_name``) on the server whose
  URL is in ``$NARRAWATCH_PG_URL`` (``state.postgresql.url_env``), through one connection pool per
  process; locks are advisory locks. Several boxes: every worker sees the same state.

The stores are the same classes on both (their SQL goes through :mod:`core.sql`); a backend only
decides what database each one opens. The :class:`~narrawatch.app.App` opens one backend and
asks it for each store.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from core.errors import StateUnavailable
from core.locks import ExclusiveLock, FileLock
from core.registry import Registry
from core.settings import Config

if TYPE_CHECKING:
    from alerts.outbox import Outbox
    from core.pgsql import PgDatabase
    from crawlers.state import CrawlStateStore
    from monitors.store import MatchStore
    from narrawatch.http.tokens import TokenStore
    from narrawatch.rules_store import RulesStore

__all__ = [
    "DETECTOR_LOCK",
    "DISPATCH_LOCK",
    "STATE_BACKENDS",
    "PostgresState",
    "SqliteState",
    "StateBackend",
    "open_state",
    "register_builtins",
    "state_url",
]

DETECTOR_LOCK = "detector-pass"
"""The lock one detector pass at a time holds across the deployment."""
DISPATCH_LOCK = "dispatcher"
"""The lock one dispatcher at a time holds across the deployment."""


class StateBackend(Protocol):
    """Opens the stores of one deployment's state (see the module docstring)."""

    name: str

    def crawl_state(self) -> CrawlStateStore:
        """Crawl state, source health and source leases."""
        ...

    def matches(self) -> MatchStore:
        """Narrative matches and analysts' verdicts."""
        ...

    def outbox(self) -> Outbox:
        """The alert outbox with re-alert, digest and dedup state."""
        ...

    def tokens(self, *, owned: bool = False) -> TokenStore:
        """API tokens; ``owned``: the store closes what it needs when it is closed (one-off commands)."""
        ...

    def rules(self) -> RulesStore:
        """Analysts' alert rules and the new-items feed of saved searches."""
        ...

    def lock(self, name: str) -> ExclusiveLock:
        """The cross-process "one at a time" lock ``name`` (:mod:`core.locks`)."""
        ...

    def close(self) -> None:
        """Close what the backend opened (after the stores it handed out are closed)."""
        ...


STATE_BACKENDS: Registry[Callable[[Config], StateBackend]] = Registry("state backend")


def _alerts_config(config: Config) -> object:
    from alerts.config import AlertsConfig

    section = config.extra.get("alerts")
    return section if isinstance(section, AlertsConfig) else AlertsConfig(root=config.root)


class SqliteState:
    """``state.backend: sqlite``: one SQLite file per store in ``data_dir``."""

    name = "sqlite"

    def __init__(self, config: Config) -> None:
        self.config = config

    def crawl_state(self) -> CrawlStateStore:
        """``<data_dir>/state.db``."""
        from crawlers.state import CrawlStateStore

        return CrawlStateStore(self.config.data_dir / "state.db")

    def matches(self) -> MatchStore:
        """``<data_dir>/matches.sqlite``."""
        from monitors.store import MatchStore

        return MatchStore(self.config.data_dir / "matches.sqlite")

    def outbox(self) -> Outbox:
        """The ``alerts.outbox.path`` file (default ``<data_dir>/alerts/outbox.sqlite``)."""
        from alerts.config import AlertsConfig
        from alerts.outbox import Outbox

        cfg = _alerts_config(self.config)
        assert isinstance(cfg, AlertsConfig)
        return Outbox(cfg.outbox_path(self.config.data_dir), cfg.outbox)

    def tokens(self, *, owned: bool = False) -> TokenStore:
        """``<data_dir>/tokens.sqlite`` (a store on a file always owns it)."""
        from narrawatch.http.tokens import TokenStore

        return TokenStore(self.config.data_dir / "tokens.sqlite")

    def rules(self) -> RulesStore:
        """``<data_dir>/rules.sqlite``."""
        from narrawatch.rules_store import RulesStore

        return RulesStore.for_data_dir(self.config.data_dir)

    def lock(self, name: str) -> ExclusiveLock:
        """``<data_dir>/locks/<name>.lock``."""
        return FileLock.in_dir(self.config.data_dir / "locks", name)

    def close(self) -> None:
        """Nothing shared to close."""


def state_url(config: Config) -> str:
    """The PostgreSQL URL from the environment variable ``state.postgresql.url_env`` names."""
    name = config.service.state.postgresql.url_env
    url = os.environ.get(name, "").strip()
    if not url:
        raise StateUnavailable(f"state.backend is postgresql but ${name} is not set (the URL comes only from it)")
    return url


class PostgresState:
    """``state.backend: postgresql``: every store on one schema through one pool (opened on first use)."""

    name = "postgresql"

    def __init__(self, config: Config) -> None:
        self.config = config
        self._db: PgDatabase | None = None

    def database(self) -> PgDatabase:
        """The shared pool on the state schema."""
        if self._db is None:
            self._db = self._open()
        return self._db

    def _open(self) -> PgDatabase:
        from core.pgsql import PgDatabase

        s = self.config.service.state.postgresql
        return PgDatabase(
            state_url(self.config),
            schema=s.schema_name,
            pool_size=s.pool_size,
            statement_timeout=s.statement_timeout,
        )

    def crawl_state(self) -> CrawlStateStore:
        """Crawl state, health and leases on the shared schema."""
        from crawlers.state import CrawlStateStore

        return CrawlStateStore(self.database())

    def matches(self) -> MatchStore:
        """Matches and verdicts on the shared schema."""
        from monitors.store import MatchStore

        return MatchStore(self.database())

    def outbox(self) -> Outbox:
        """The outbox on the shared schema (``alerts.outbox.path`` is not used)."""
        from alerts.config import AlertsConfig
        from alerts.outbox import Outbox

        cfg = _alerts_config(self.config)
        assert isinstance(cfg, AlertsConfig)
        return Outbox(self.database(), cfg.outbox)

    def tokens(self, *, owned: bool = False) -> TokenStore:
        """Tokens on the shared schema; ``owned``: on a pool of its own, closed with the store."""
        from narrawatch.http.tokens import TokenStore

        if not owned:
            return TokenStore(self.database())
        store = TokenStore(self._open())
        store._owns_db = True  # the store closes the pool it was given
        return store

    def rules(self) -> RulesStore:
        """Rules and the new-items feed on the shared schema."""
        from narrawatch.rules_store import RulesStore

        return RulesStore(self.database())

    def lock(self, name: str) -> ExclusiveLock:
        """A session advisory lock on the state server."""
        return self.database().lock(name)

    def close(self) -> None:
        """Close the pool."""
        if self._db is not None:
            self._db.close()
            self._db = None


def open_state(config: Config) -> StateBackend:
    """The backend ``state.backend`` names (nothing is connected until a store is asked for)."""
    return STATE_BACKENDS.get(config.service.state.backend)(config)


def register_builtins() -> None:
    """Register ``sqlite`` and ``postgresql`` (idempotent)."""
    STATE_BACKENDS.add("sqlite", SqliteState)
    STATE_BACKENDS.add("postgresql", PostgresState)
