"""Re-check passes: recent items fetched again for edits and deletions, results applied here.

The schedule and the verdicts are :mod:`crawlers.recheck`'s; the fetches run in the crawl
subprocess (``mode="recheck"``, :mod:`crawlers.scrapy_project.spiders.recheck`). This side:

* :meth:`RecheckService.on_indexed` (a pipeline hook) starts tracking each newly indexed item of
  a ``site``, ``feed`` or ``telegram`` source, first seen at its fetch time;
* :meth:`RecheckService.run_once` takes the items due (the longest overdue first, at most
  ``recheck.max_per_pass``: a pass never grows past its budget, so it cannot starve the crawl
  jobs it shares the scheduler's workers with), re-fetches them in one crawl subprocess and
  applies each verdict:

  - *present* with a text: the item goes through :meth:`narrawatch.pipeline.Pipeline.index_documents`
    again (idempotent upsert by id; a changed text is re-embedded, re-matched and becomes the next
    version in the evidence store with its capture; the same text only moves ``last_seen``);
  - *gone* / *redirected* / *missing*: the evidence store marks it deleted, with the last time it
    was seen present; its schedule ends;
  - *unknown* (fetch failed, blocked, the channel page showed nothing): nothing is marked; the
    item is tried again later.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from core.documents import Document, IndexedDocument, UpsertResult, utcnow
from core.evidence import Capture
from core.serialize import document_from_dict
from core.settings import Config
from crawlers.recheck import DELETED, RECHECK_KINDS, RecheckItem, RecheckStore, recheck_path
from narrawatch.app import App

__all__ = ["RecheckCrawlFn", "RecheckReport", "RecheckService", "attach_recheck"]

log = logging.getLogger(__name__)

RecheckCrawlFn = Callable[[Config, list[str], dict[str, Any]], Iterator[dict[str, Any]]]
"""Runs a re-check crawl for source ids with their item lists and yields the crawler's events."""

_TELEGRAM_ID = re.compile(r"^tg:[^/]+/(\d+)$")


def _subprocess_recheck(config: Config, sources: list[str], state: dict[str, Any]) -> Iterator[dict[str, Any]]:
    from crawlers.runner import run_crawl

    yield from run_crawl(config.root, sources, state, mode="recheck")


@dataclass
class RecheckReport:
    """What one re-check pass did."""

    checked: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    edited: list[str] = field(default_factory=list)
    """Document ids that got a new version this pass."""
    deleted: list[str] = field(default_factory=list)
    """Document ids marked deleted this pass."""
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "checked": self.checked,
            "outcomes": dict(self.outcomes),
            "edited": list(self.edited),
            "deleted": list(self.deleted),
            "errors": self.errors[:20],
        }


class RecheckService:
    """Tracks new items and runs re-check passes for one App (see the module docstring)."""

    def __init__(
        self,
        app: App,
        *,
        crawl: RecheckCrawlFn = _subprocess_recheck,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.app = app
        self.settings = app.config.service.recheck
        self.crawl = crawl
        self.clock = clock
        self.store = RecheckStore(recheck_path(app.config.data_dir), self.settings.after)

    def close(self) -> None:
        """Close the schedule store."""
        self.store.close()

    # -- tracking ------------------------------------------------------------------------------

    def on_indexed(self, docs: Sequence[IndexedDocument], result: UpsertResult) -> None:
        """Pipeline hook: track the batch's new items (known ones keep their schedule)."""
        new = set(result.new)
        rows = [
            (d.id, d.source_id, d.url, d.extraction, d.fetched)
            for d in (x.document for x in docs)
            if d.id in new and d.kind in RECHECK_KINDS
        ]
        if rows:
            self.store.track(rows)

    # -- a pass --------------------------------------------------------------------------------

    def _sources(self) -> dict[str, str]:
        """Enabled, runnable sources whose kind is re-checked: id -> kind."""
        return {
            s.id: s.kind
            for s in self.app.config.sources
            if s.enabled and not s.disabled_reason and s.kind in RECHECK_KINDS
        }

    def run_once(self, now: datetime | None = None) -> RecheckReport:
        """One pass over the items due at ``now`` (default: the clock), within the per-pass budget."""
        report = RecheckReport()
        if not self.settings.enabled:
            return report
        now = now or self.clock()
        sources = self._sources()
        due = self.store.due(now, self.settings.max_per_pass, sources=sorted(sources))
        if not due:
            return report
        by_source: dict[str, list[RecheckItem]] = {}
        for item in due:
            by_source.setdefault(item.source_id, []).append(item)
        state = {sid: {"recheck": [_job_item(i) for i in items]} for sid, items in by_source.items()}
        items = {i.document_id: i for i in due}
        events = self.crawl(self.app.config, sorted(by_source), state)
        try:
            for event in events:
                kind = event.get("event")
                if kind == "recheck":
                    found = items.get(str(event.get("document_id")))
                    if found is not None and found.source_id == event.get("source"):
                        self._apply(found, event, now, report)
                elif kind == "error":
                    report.errors.append(str(event.get("message", "error")))
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
        counters = self.app.pipeline.counters
        for outcome, n in report.outcomes.items():
            counters.add(f"recheck.{outcome}", n)
        counters.add("recheck.edited", len(report.edited))
        log.info(
            "re-check: %d of %d due items checked (%s); %d edited, %d deleted",
            report.checked,
            len(due),
            dict(report.outcomes),
            len(report.edited),
            len(report.deleted),
        )
        return report

    def _apply(self, item: RecheckItem, event: dict[str, Any], now: datetime, report: RecheckReport) -> None:
        outcome = str(event.get("outcome") or "unknown")
        capture = Capture.from_dict(event["capture"]) if isinstance(event.get("capture"), dict) else None
        evidence = self.app.evidence
        report.checked += 1
        report.outcomes[outcome] += 1
        if outcome in DELETED:
            if capture is not None:
                evidence.record_capture(item.document_id, capture)
            latest = evidence.latest_version(item.document_id)
            seen = [t for t in (item.last_present, item.first_seen, latest.last_seen if latest else None) if t]
            deletion = evidence.mark_deleted(item.document_id, now, outcome, last_seen=max(seen))
            if deletion is not None:
                report.deleted.append(item.document_id)
                log.info(
                    "re-check: %s deleted (%s: %s); last seen %s",
                    item.document_id,
                    outcome,
                    event.get("detail", ""),
                    deletion.last_seen.isoformat(),
                )
        elif outcome == "present":
            self._present(item, event, capture, now, report)
        else:
            log.info("re-check: %s undecided: %s", item.document_id, event.get("detail", ""))
        self.store.record(item.document_id, outcome, now)

    def _present(
        self, item: RecheckItem, event: dict[str, Any], capture: Capture | None, now: datetime, report: RecheckReport
    ) -> None:
        evidence = self.app.evidence
        stored = self.app.index.get(item.document_id)
        if stored is not None and not evidence.versions(item.document_id):
            # Indexed before versions were kept: the stored text is version 1.
            evidence.record_version(stored.id, stored.title, stored.text, stored.capture, seen=stored.fetched)
        raw = event.get("document")
        if not isinstance(raw, dict) or stored is None:
            latest = evidence.latest_version(item.document_id)
            if latest is not None:  # still there; its text is not compared (kept from a feed's content)
                evidence.record_version(item.document_id, latest.title, latest.text, capture, seen=now)
            return
        before = len(evidence.versions(item.document_id))
        self.app.pipeline.index_documents([_merged(stored, document_from_dict(raw))])
        if len(evidence.versions(item.document_id)) > before:
            report.edited.append(item.document_id)
            log.info("re-check: %s edited (version %d)", item.document_id, before + 1)


def _merged(stored: Document, fresh: Document) -> Document:
    """The re-fetched document, keeping what the first crawl knew better (publication time, outlet,
    kind, extra fields a page alone does not carry)."""
    return replace(
        fresh,
        source_id=stored.source_id,
        kind=stored.kind,
        published=stored.published,
        outlet=stored.outlet or fresh.outlet,
        author=fresh.author or stored.author,
        extra={**stored.extra, **fresh.extra},
    )


def _job_item(item: RecheckItem) -> dict[str, Any]:
    out: dict[str, Any] = {"document_id": item.document_id, "url": item.url, "extraction": item.extraction}
    m = _TELEGRAM_ID.match(item.document_id)
    if m:
        out["message_id"] = int(m.group(1))
    return out


def attach_recheck(app: App, *, crawl: RecheckCrawlFn | None = None) -> RecheckService | None:
    """Track new items from the pipeline for re-checks; None when ``recheck.enabled`` is false."""
    if not app.config.service.recheck.enabled:
        log.info("disabled re-checks: recheck.enabled is false")
        return None
    service = RecheckService(app, crawl=crawl or _subprocess_recheck)
    app.pipeline.hooks.append(service.on_indexed)
    return service
