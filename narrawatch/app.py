"""The App: everything a running narrawatch opens, owned in one place.

Every front-end (CLI, API, web, demo, benchmarks) gets its parts from an :class:`App`; none
opens a store or the index itself. Parts open on first use, so ``alerts list`` never loads the
embedding model and ``serve`` on a fresh install does not need an index yet; :meth:`App.close`
closes exactly what was opened, in reverse order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from core.settings import Config
from narrawatch.builtins import register_builtins

if TYPE_CHECKING:  # the parts' types only; each is imported where it is opened
    from alerts.config import AlertsConfig
    from alerts.outbox import Outbox
    from core.locks import ExclusiveLock
    from crawlers.evidence_store import EvidenceStore
    from crawlers.sightings import SightingStore
    from crawlers.state import CrawlStateStore
    from index.base import DocumentIndex, IndexLifecycle
    from index.embed import Embedder
    from monitors.catalogue import Catalogue
    from monitors.store import MatchStore
    from narrawatch.http.tokens import TokenStore
    from narrawatch.pipeline import Pipeline
    from narrawatch.rules_store import RulesStore
    from narrawatch.state import StateBackend

__all__ = ["App", "open_app"]

T = TypeVar("T")


class App:
    """The opened parts of one narrawatch, for one config.

    ``read_only``: the index is opened for reading (``serve`` beside a running crawl; on the
    embedded backend before the first ingest it answers as an empty index).
    """

    PARTS = (
        "state_backend",
        "embedder",
        "index",
        "state",
        "sightings",
        "evidence",
        "pipeline",
        "matches",
        "outbox",
        "tokens",
        "rules",
    )

    def __init__(self, config: Config, *, read_only: bool = False, **parts: Any) -> None:
        """``parts`` (e.g. ``index=``, ``embedder=``) are used instead of opening them from the
        config (tests, benchmarks, an index the caller already holds); the App closes them too."""
        unknown = sorted(set(parts) - set(self.PARTS))
        if unknown:
            raise TypeError(f"unknown App parts {unknown}; known: {', '.join(self.PARTS)}")
        # Backends, detectors and channels are looked up by name as parts open; a front-end that
        # loaded the config has registered them already (idempotent).
        register_builtins()
        self.config = config
        self.read_only = read_only
        self._parts: dict[str, Any] = dict(parts)
        self._order: list[str] = list(parts)
        self._lock = threading.RLock()

    def _part(self, name: str, make: Callable[[], T]) -> T:
        with self._lock:
            if name not in self._parts:
                self._parts[name] = make()
                self._order.append(name)
            part: T = self._parts[name]
            return part

    # -- parts ----------------------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        """The embedding model ``embedding.model`` names (loaded on first use)."""
        from narrawatch.backends import open_embedder

        return self._part("embedder", lambda: open_embedder(self.config))

    @property
    def index(self) -> DocumentIndex:
        """The document index ``index.backend`` names, bound to the embedder's space."""

        def make() -> DocumentIndex:
            if self.read_only:
                from narrawatch.pending_index import open_read_index

                return open_read_index(self.config, self.embedder.space)
            from narrawatch.backends import open_index

            return open_index(self.config, self.embedder.space)

        return self._part("index", make)

    @property
    def state_backend(self) -> StateBackend:
        """Where the stores live (``state.backend``, :mod:`narrawatch.state`); closed last."""
        from narrawatch.state import open_state

        with self._lock:
            if "state_backend" not in self._parts:
                self._parts["state_backend"] = open_state(self.config)
                self._order.insert(0, "state_backend")  # closed after every store it handed out
            backend: StateBackend = self._parts["state_backend"]
            return backend

    def lock(self, name: str) -> ExclusiveLock:
        """The deployment-wide "one at a time" lock ``name`` (e.g. ``narrawatch.state.DETECTOR_LOCK``)."""
        return self.state_backend.lock(name)

    @property
    def state(self) -> CrawlStateStore:
        """Crawl state, source health and source leases (from the state backend)."""
        return self._part("state", lambda: self.state_backend.crawl_state())

    @property
    def sightings(self) -> SightingStore:
        """Which sources carried which URL (``<data_dir>/sightings.sqlite``)."""
        from crawlers.sightings import SightingStore

        return self._part("sightings", lambda: SightingStore(self.config.data_dir / "sightings.sqlite"))

    @property
    def evidence(self) -> EvidenceStore:
        """Captures, versions and deletions of documents (``<data_dir>/evidence.sqlite``)."""
        from crawlers.evidence_store import EvidenceStore, evidence_path

        return self._part("evidence", lambda: EvidenceStore(evidence_path(self.config.data_dir)))

    @property
    def pipeline(self) -> Pipeline:
        """Crawl -> extract -> embed -> index, with this app's index, state and sightings."""
        from narrawatch.pipeline import Pipeline

        return self._part(
            "pipeline",
            lambda: Pipeline(
                self.config,
                embedder=self.embedder,
                index=self.index,
                state=self.state,
                sightings=self.sightings,
                evidence=self.evidence,
            ),
        )

    @property
    def matches(self) -> MatchStore:
        """Narrative matches and analysts' verdicts (from the state backend)."""
        return self._part("matches", lambda: self.state_backend.matches())

    @property
    def catalogue(self) -> Catalogue:
        """The narrative catalogue (the config's ``narratives`` section)."""
        from monitors.catalogue import catalogue_of

        return self._part("catalogue", lambda: catalogue_of(self.config))

    @property
    def alerts_config(self) -> AlertsConfig:
        """The ``alerts`` section (rules and channels; empty when the config has none)."""
        from alerts.config import AlertsConfig

        section = self.config.extra.get("alerts")
        return section if isinstance(section, AlertsConfig) else AlertsConfig(root=self.config.root)

    @property
    def outbox(self) -> Outbox:
        """The persistent alert outbox with re-alert, digest and dedup state (from the state backend)."""
        return self._part("outbox", lambda: self.state_backend.outbox())

    @property
    def rules(self) -> RulesStore:
        """Analysts' alert rules and the new-items feed of saved searches (from the state backend)."""
        return self._part("rules", lambda: self.state_backend.rules())

    @property
    def tokens(self) -> TokenStore:
        """API tokens, hashed, with roles (from the state backend)."""
        return self._part("tokens", lambda: self.state_backend.tokens())

    @property
    def lifecycle(self) -> IndexLifecycle:
        """Create / status / reindex of the configured index backend (opens nothing itself)."""
        from narrawatch.backends import index_lifecycle

        return self._part("lifecycle", lambda: index_lifecycle(self.config))

    def reconfigure(self, config: Config) -> None:
        """Use a reloaded config (:mod:`narrawatch.reload`): what is derived from the config alone
        (the narrative catalogue, the index lifecycle) is rebuilt on next use; opened stores, the
        index and the embedder stay as they are (their settings need a restart)."""
        with self._lock:
            self.config = config
            for name in ("catalogue", "lifecycle"):
                if name in self._parts:
                    del self._parts[name]
                    self._order.remove(name)

    def is_open(self, name: str) -> bool:
        """Whether the part ``name`` (e.g. ``"index"``) has been opened."""
        return name in self._parts

    def close(self) -> None:
        """Close every opened part, the last opened first."""
        with self._lock:
            for name in reversed(self._order):
                close = getattr(self._parts[name], "close", None)
                if callable(close):
                    close()
            self._parts.clear()
            self._order.clear()


@contextmanager
def open_app(config: Config, *, read_only: bool = False) -> Iterator[App]:
    """An :class:`App` for ``config`` that is closed on exit."""
    app = App(config, read_only=read_only)
    try:
        yield app
    finally:
        app.close()
