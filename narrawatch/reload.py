"""Config reload for the running service: watch the YAML, validate in full, switch or keep the old.

:class:`ConfigWatcher` polls a content hash of the config files (``service.yaml``,
``sources.yaml``/``sources/``, ``narratives/``, ``alerts.yaml``/``alerts/``) every
:data:`RELOAD_EVERY` on the scheduler, and reloads on SIGHUP too. A reload loads the whole
directory with :func:`core.settings.load_config`; on any problem the old config stays and every
problem is logged as ``file:path: message`` (once per content: an unchanged broken file is not
re-reported every poll). On success:

* sources added, removed or changed are rescheduled (:meth:`narrawatch.scheduler.Service.reschedule`);
  a crawl in flight finishes with the config it started with;
* narratives, alert rules and channels are swapped in for the next match and detector pass
  (:meth:`narrawatch.monitoring.MonitoringService.reload`);
* ``service.yaml`` changes to the data directory, index, embedding model, state backend or API
  need a restart: they are logged as such and left as they were for the opened parts.

A content hash (not mtimes) decides, so an editor's save that changes nothing does nothing and
a change within one mtime tick is still seen. Rules made from the CLI/API/web are not in YAML
and need no reload (:mod:`narrawatch.rules_store`).
"""

from __future__ import annotations

import hashlib
import logging
import signal
import threading
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from core.errors import ConfigError
from core.settings import SOURCES_INCLUDE_DIR, Config, load_config

if TYPE_CHECKING:
    from narrawatch.app import App
    from narrawatch.monitoring import MonitoringService
    from narrawatch.scheduler import Service

__all__ = ["RELOAD_EVERY", "ConfigWatcher", "attach_reload", "config_files", "config_hash"]

log = logging.getLogger(__name__)

RELOAD_EVERY = timedelta(seconds=5)
"""How often the service looks for edited config files."""

_RESTART_ONLY = ("data_dir", "index", "embedding", "api", "crawl")


def config_files(root: Path, data_dir: Path | None = None) -> list[Path]:
    """The YAML files a config directory is read from (those that exist), sorted; with ``data_dir``
    also the service-written sources in ``<data_dir>/sources.d/`` (imports, sources added in the UI)."""
    files = [p for p in (root / n for n in ("service.yaml", "sources.yaml", "alerts.yaml")) if p.is_file()]
    for folder in ("sources", "narratives", "alerts"):
        d = root / folder
        if d.is_dir():
            files += [p for p in d.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml")]
    if data_dir is not None and (data_dir / SOURCES_INCLUDE_DIR).is_dir():
        files += [p for p in (data_dir / SOURCES_INCLUDE_DIR).glob("*.yaml") if p.is_file()]
    return sorted(files)


def config_hash(root: Path, data_dir: Path | None = None) -> str:
    """SHA-256 over the config files' names and contents (unreadable files count as their error)."""
    h = hashlib.sha256()
    for path in config_files(root, data_dir):
        h.update(str(path).encode("utf-8") + b"\0")
        try:
            h.update(path.read_bytes())
        except OSError as exc:
            h.update(f"unreadable: {exc}".encode())
        h.update(b"\0")
    return h.hexdigest()


class ConfigWatcher:
    """Reloads the App's config when its files change (poll) or on request (SIGHUP)."""

    def __init__(self, app: App, service: Service | None = None, monitoring: MonitoringService | None = None) -> None:
        self.app = app
        self.service = service
        self.monitoring = monitoring
        self.root = app.config.root
        self.data_dir = app.config.data_dir
        self.seen = config_hash(self.root, self.data_dir)
        self._lock = threading.Lock()
        self.reloads = 0
        self.refused = 0
        self.last_issues: list[str] = []

    def check(self) -> bool:
        """Reload if the files changed since the last look; True when a new config was switched in."""
        current = config_hash(self.root, self.data_dir)
        if current == self.seen:
            return False
        return self.reload(current, reason="config files changed")

    def reload(self, digest: str | None = None, *, reason: str = "reload requested") -> bool:
        """Load and validate the whole config; switch to it, or keep the old one and log why."""
        with self._lock:
            digest = digest or config_hash(self.root, self.data_dir)
            self.seen = digest
            try:
                new = load_config(self.root, require_sources=bool(self.app.config.sources))
            except ConfigError as exc:
                self.refused += 1
                self.last_issues = [str(i) for i in exc.issues]
                for issue in exc.issues:
                    log.error("config reload refused, keeping the running config: %s", issue)
                log.error("config reload (%s): %d problem(s); nothing changed", reason, len(exc.issues))
                return False
            self._switch(new, reason)
            self.reloads += 1
            self.last_issues = []
            return True

    def _switch(self, new: Config, reason: str) -> None:
        old = self.app.config
        for key in _RESTART_ONLY:
            if getattr(old.service, key) != getattr(new.service, key):
                log.warning("config reload: service.yaml %s changed; it takes effect at the next restart", key)
        self.app.reconfigure(new)
        pipeline = self.app.pipeline if self.app.is_open("pipeline") else None
        if pipeline is not None:
            pipeline.config = new
        changes: dict[str, list[str]] = {}
        if self.service is not None:
            changes = self.service.reschedule(new)
        if self.monitoring is not None:
            self.monitoring.reload()
        moved = ", ".join(f"{k} {', '.join(v)}" for k, v in changes.items() if v) or "no source changes"
        log.info(
            "config reloaded (%s): %d sources, %d narratives, %d rules; %s",
            reason,
            len(new.sources),
            len(self.app.catalogue.enabled),
            len(self.app.alerts_config.rules),
            moved,
        )

    def on_sighup(self, signum: int, frame: FrameType | None) -> None:
        """Signal handler: run a reload on the scheduler now (never inside the handler)."""
        if self.service is not None and self.service.scheduler.running:
            self.service.scheduler.add_job(self._reload_now, id="config-reload-now", replace_existing=True)
        else:
            threading.Thread(target=self._reload_now, name="config-reload", daemon=True).start()

    def _reload_now(self) -> None:
        self.reload(reason="SIGHUP")


def attach_reload(
    app: App, service: Service, monitoring: MonitoringService | None, *, install_signal: bool = True
) -> ConfigWatcher:
    """Poll the config files on ``service``'s scheduler and reload on SIGHUP (main thread only)."""
    watcher = ConfigWatcher(app, service, monitoring)
    service.add_job("config-reload", watcher.check, RELOAD_EVERY)
    if install_signal and hasattr(signal, "SIGHUP") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, watcher.on_sighup)
    return watcher
