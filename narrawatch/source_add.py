"""Adding one source from the web UI or the API (analyst role): validate, check with one fetch, save.

1. **Validate** with the kind's config model (:func:`narrawatch.source_lists.validate_entry`); an id
   or a feed/channel that is configured already is refused.
2. **Guard**: every host the source names must resolve to public addresses, unless the operator set
   ``api.analyst_private_hosts: true``. A configured host is trusted by the crawler's address guard
   (:mod:`crawlers.addresses`), so an analyst must not be able to point the service at its own network.
3. **Check** (:func:`check_source`): one crawl of the source alone through the real crawl subprocess
   (Scrapy, robots.txt, the address guard: content never steers it elsewhere), made as small as the
   kind allows: a feed without fetching its articles, one Telegram preview page, one site page
   without sitemaps, nothing archived. A dead host, an error status or a body that is not what the
   kind expects (not a feed, not a channel preview) is reported in words and nothing is saved.
4. **Save** into ``<data_dir>/sources.d/analysts.yaml`` (:func:`narrawatch.source_lists.apply_plan`),
   which :func:`core.settings.load_config` reads with the config directory's own files; the App's
   config is switched to the new one so the pages show it at once, and the running service picks
   the source up at its next config reload.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from core.errors import InvalidRequestError
from core.settings import Config, SourceBase, load_config
from crawlers.addresses import configured_urls, is_public_address, resolve_host
from narrawatch.app import App
from narrawatch.source_lists import ANALYST_FILE, apply_plan, entry_of, plan_entries, validate_entry

__all__ = ["CheckResult", "add_source", "check_source", "guard_hosts"]

log = logging.getLogger(__name__)

_CHECK_OVERRIDES: dict[str, dict[str, Any]] = {
    "feed": {"fetch_articles": False, "max_entries": 50},
    "telegram": {"max_pages": 1},
    "site": {"max_pages": 1, "max_depth": 0, "use_sitemaps": False},
}
"""Per kind: settings that make the check one fetch (kinds not listed are checked as configured)."""


@dataclass(frozen=True)
class CheckResult:
    """What the one-fetch check found: ``ok``, a message for people, items seen and a few titles."""

    ok: bool
    message: str
    items: int = 0
    titles: tuple[str, ...] = ()
    errors: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "ok": self.ok,
            "message": self.message,
            "items": self.items,
            "titles": list(self.titles),
            "errors": list(self.errors),
        }


def guard_hosts(source: SourceBase, *, allow_private: bool) -> None:
    """Refuse a source whose configured hosts resolve to internal addresses (or not at all)."""
    for url in configured_urls(source):
        host = (urlsplit(url).hostname or "").rstrip(".")
        if not host:
            raise InvalidRequestError(f"{url}: no host name")
        try:
            addresses = resolve_host(host, urlsplit(url).port)
        except OSError as exc:
            raise InvalidRequestError(f"{host}: the host name does not resolve ({exc.strerror or exc})") from None
        internal = [a for a in addresses if not is_public_address(a)]
        if internal and not allow_private:
            raise InvalidRequestError(
                f"{host} resolves to an internal address ({internal[0]}); analysts may add public hosts only"
                " (operators: api.analyst_private_hosts)"
            )


def check_source(config: Config, source: SourceBase, *, timeout: float | None = None) -> CheckResult:
    """Crawl ``source`` once, alone, in a throw-away data directory; say what came back."""
    from crawlers.runner import run_crawl

    entry = {**entry_of(source), **_CHECK_OVERRIDES.get(source.kind, {}), "archive": False, "enabled": True}
    crawl = config.service.crawl
    budget = timeout or min(
        crawl.max_run_time.total_seconds(), crawl.timeout.total_seconds() * (crawl.retry_times + 2) + 15
    )
    with tempfile.TemporaryDirectory(prefix="narrawatch-check-") as tmp:
        root = Path(tmp)
        service = {
            "data_dir": str(root / "data"),
            "crawl": {k: _plain(v) for k, v in crawl.model_dump(exclude_defaults=True).items()},
            "archive": {"enabled": False},
        }
        (root / "service.yaml").write_text(yaml.safe_dump(service), encoding="utf-8")
        (root / "sources.yaml").write_text(yaml.safe_dump({"sources": [entry]}, allow_unicode=True), encoding="utf-8")
        events = list(run_crawl(root, [source.id], {}, timeout=budget))
    return _verdict(source, events)


def _plain(value: Any) -> Any:
    return value.total_seconds() if isinstance(value, timedelta) else value


def _verdict(source: SourceBase, events: Iterable[dict[str, Any]]) -> CheckResult:
    events = list(events)
    docs = [e for e in events if e.get("event") == "document"]
    errors = [str(e.get("message", "")) for e in events if e.get("event") == "error"]
    reasons = [str(e.get("reason", "")) for e in events if e.get("event") == "error"]
    done = [e for e in events if e.get("event") == "source_done"]
    ok = bool(done) and bool(done[-1].get("ok"))
    titles = tuple(str(d["document"].get("title") or d["document"].get("url") or "")[:140] for d in docs[:5])
    if ok:
        what = "entries" if source.kind == "feed" else "posts" if source.kind == "telegram" else "items"
        message = f"reachable: {len(docs)} {what} found" if docs else "reachable, but no items found yet"
        return CheckResult(True, message, len(docs), titles, tuple(errors))
    if "parse_error" in reasons:
        expected = {"feed": "an RSS/Atom/JSON feed", "telegram": "a Telegram channel preview (t.me/s/...)"}
        first = next(m for m, r in zip(errors, reasons, strict=True) if r == "parse_error")
        message = f"not {expected.get(source.kind, 'what a ' + source.kind + ' source serves')}: {first}"
    elif errors:
        message = f"could not fetch: {errors[0]}"
    else:
        message = "the check crawl ended without an answer"
    return CheckResult(False, message, len(docs), titles, tuple(errors))


def add_source(app: App, entry: Mapping[str, Any], *, check: bool = True) -> tuple[SourceBase, CheckResult | None]:
    """Validate, guard, check (one fetch) and save one source; returns it and the check result.

    Raises :class:`InvalidRequestError` with the reason when any step refuses."""
    config = app.config
    source, issues = validate_entry(entry, "source", "")
    if source is None:
        raise InvalidRequestError("; ".join(i.message for i in issues))
    plan = plan_entries(config, [("", entry_of(source))], "source")
    if plan.blocked:
        raise InvalidRequestError(plan.blocked[0].message)
    if plan.unchanged or plan.changed:
        raise InvalidRequestError(f"a source with id {source.id!r} is configured already")
    guard_hosts(source, allow_private=config.service.api.analyst_private_hosts)
    result = check_source(config, source) if check else None
    if result is not None and not result.ok:
        raise InvalidRequestError(f"{source.id}: {result.message}; not saved")
    target = apply_plan(config, plan, ANALYST_FILE, what="sources added in the web UI or API")
    log.info("source %s added to %s (%s)", source.id, target, result.message if result else "not checked")
    app.reconfigure(load_config(config.root, require_sources=bool(config.sources)))
    return source, result
