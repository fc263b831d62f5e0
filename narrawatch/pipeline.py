"""The ingest pass: crawl (subprocess) -> embed -> index -> hooks (matching, detectors).

Guarantees:

* A document counts as ingested only after the index acknowledged it; only then is its item
  key marked seen in the crawl state.
* A feed's new ETag/Last-Modified is stored only when every document of that fetch was
  indexed, so a crash or a failed upsert leads to a re-fetch, never to a silent gap.
* Unchanged documents (same content hash) are neither re-embedded nor rewritten.
* A document id (the hash of its canonical URL) belongs to the first source that indexed it.
  Another source carrying the same URL is recorded as a sighting (:mod:`crawlers.sightings`)
  and never rewrites the record; only a source whose own configured host serves the URL takes
  the record over from one whose host does not. Every source's sighting is stored before its
  item is marked seen.
* Values no backend can store (``published`` before 1970 or in the future, ``views`` past
  2^63-1) are replaced before indexing (:func:`core.documents.clamp_storable`), with a warning.
* Reach refresh (``reach`` events: fresh views/reactions of a post already indexed, published
  within ``crawl.reach_refresh``) updates the stored counters only, through
  :meth:`index.base.DocumentIndex.update_reach`: nothing is re-embedded, re-matched or versioned,
  the content hash stays, and a document another source owns is not touched.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.documents import (
    MAX_COUNTER,
    Document,
    IndexedDocument,
    SearchFilters,
    UpsertResult,
    clamp_storable,
    utcnow,
)
from core.errors import NarrawatchError
from core.logging import StageCounters
from core.serialize import document_from_dict
from core.settings import Config
from crawlers.evidence_store import EvidenceStore, evidence_path
from crawlers.sightings import SightingStore, sightings_path
from crawlers.state import CrawlStateStore
from index.base import DocumentIndex, ReachUpdate
from index.embed import Embedder, embed_each
from narrawatch.ownership import Ownership

__all__ = ["CrawlFn", "IndexedHook", "Pipeline", "SourceReport"]

log = logging.getLogger(__name__)

CrawlFn = Callable[[Config, list[str], dict[str, Any]], Iterator[dict[str, Any]]]
"""Runs a crawl for source ids with their states and yields the crawler's events."""

IndexedHook = Callable[[Sequence[IndexedDocument], UpsertResult], None]
"""Called after each acknowledged batch with the new and updated documents."""

FLUSH_EVERY = 64


@dataclass
class SourceReport:
    """What one pass did for one source."""

    source_id: str
    fetched: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    carried: int = 0
    """Items whose URL another source's document owns: recorded as sightings only."""
    rejected: int = 0
    """Documents the index refused permanently (recorded, not retried, not a source failure)."""
    reach_updated: int = 0
    """Indexed documents whose reach counters (views, reactions) this pass refreshed."""
    dropped: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    """Non-fatal problems of this pass as ``(reason, message)``: feed parse warnings, rejected ids, id gaps."""
    ok: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "source": self.source_id,
            "ok": bool(self.ok),
            "fetched": self.fetched,
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "carried": self.carried,
            "rejected": self.rejected,
            "reach_updated": self.reach_updated,
            "dropped": dict(self.dropped),
            "failed": not self.ok,
            "errors": self.errors[:20],
            "warnings": len(self.warnings),
        }


def _subprocess_crawl(config: Config, sources: list[str], state: dict[str, Any]) -> Iterator[dict[str, Any]]:
    from crawlers.runner import run_crawl

    # The crawl child logs at our level unless told otherwise.
    os.environ.setdefault("NARRAWATCH_CRAWL_LOG_LEVEL", logging.getLevelName(logging.getLogger().getEffectiveLevel()))

    yield from run_crawl(config.root, sources, state)


def _reach_update(sid: str, event: dict[str, Any]) -> ReachUpdate | None:
    """The index update a ``reach`` event asks for (None when it carries nothing usable)."""
    doc_id = event.get("document_id")
    if not isinstance(doc_id, str) or not doc_id:
        return None
    views = event.get("views")
    if isinstance(views, bool) or not isinstance(views, int) or not 0 <= views <= MAX_COUNTER:
        views = None
    counters: dict[str, Any] = {}
    reactions = event.get("reactions")
    if isinstance(reactions, dict):
        clean = {
            str(k): v
            for k, v in reactions.items()
            if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_COUNTER
        }
        if clean:
            counters["reactions"] = clean
    if isinstance(event.get("at"), str):
        counters["reach_at"] = event["at"]
    if views is None and "reactions" not in counters:
        return None
    return ReachUpdate(doc_id, sid, views, counters)


class Pipeline:
    """Wires crawl events to embedding, the index and post-index hooks. Thread-safe."""

    def __init__(
        self,
        config: Config,
        *,
        embedder: Embedder,
        index: DocumentIndex,
        state: CrawlStateStore,
        crawl: CrawlFn = _subprocess_crawl,
        counters: StageCounters | None = None,
        sightings: SightingStore | None = None,
        evidence: EvidenceStore | None = None,
    ) -> None:
        self.config = config
        self.embedder = embedder
        self.index = index
        self.state = state
        self.crawl = crawl
        self.counters = counters or StageCounters()
        self.hooks: list[IndexedHook] = []
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._sightings = sightings
        self._owns_sightings = sightings is None
        self._evidence = evidence
        self._owns_evidence = evidence is None
        self.ownership = Ownership(config)

    @property
    def sightings(self) -> SightingStore:
        """The sightings store (opened on first use at ``<data_dir>/sightings.sqlite`` unless given)."""
        if self._sightings is None:
            self._sightings = SightingStore(sightings_path(self.config.data_dir))
        return self._sightings

    @property
    def evidence(self) -> EvidenceStore:
        """The evidence store (opened on first use at ``<data_dir>/evidence.sqlite`` unless given)."""
        if self._evidence is None:
            self._evidence = EvidenceStore(evidence_path(self.config.data_dir))
        return self._evidence

    def close(self) -> None:
        """Close the sightings and evidence stores if this pipeline opened them."""
        if self._owns_sightings and self._sightings is not None:
            self._sightings.close()
            self._sightings = None
        if self._owns_evidence and self._evidence is not None:
            self._evidence.close()
            self._evidence = None

    def stop(self) -> None:
        """Ask running passes to stop after the batch in hand (it is still indexed)."""
        self._stop.set()

    def ingest(
        self,
        source_ids: Sequence[str] | None = None,
        *,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> list[SourceReport]:
        """Run one pass over the given sources (default: every enabled source)."""
        if source_ids is None:
            source_ids = [s.id for s in self.config.sources if s.enabled and not s.disabled_reason]
        else:
            for sid in source_ids:
                self.config.source(sid)  # unknown id -> UnknownNameError listing the ids
        reports = {sid: SourceReport(sid) for sid in source_ids}
        if not source_ids:
            return []
        job_state = {sid: self.state.job_state(sid) for sid in source_ids}
        buffers: dict[str, list[tuple[str, Document]]] = {sid: [] for sid in source_ids}
        reach: dict[str, list[ReachUpdate]] = {sid: [] for sid in source_ids}
        validators: dict[str, dict[str, Any]] = {}
        done: set[str] = set()
        events = self.crawl(self.config, list(source_ids), job_state)
        try:
            for event in events:
                if on_event is not None:
                    on_event(event)
                sid = event.get("source", "")
                report = reports.get(sid)
                if report is None:
                    log.warning("event for unknown source ignored: %s", event)
                    continue
                kind = event.get("event")
                if kind == "document":
                    buffers[sid].append((str(event["key"]), document_from_dict(event["document"])))
                    if len(buffers[sid]) >= FLUSH_EVERY:
                        self._flush(sid, buffers[sid], report)
                elif kind == "reach":
                    update = _reach_update(sid, event)
                    if update is not None:
                        reach[sid].append(update)
                    if len(reach[sid]) >= FLUSH_EVERY:
                        self._flush_reach(reach[sid], report)
                elif kind == "fetched":
                    report.fetched += 1
                    self.counters.add("crawl.fetched")
                elif kind == "dropped":
                    reason = str(event.get("reason", "unknown"))
                    report.dropped[reason] += 1
                    self.counters.add(f"drop.{reason}")
                elif kind == "state":
                    validators[sid] = dict(event.get("state") or {})
                elif kind == "error":
                    msg = str(event.get("message", "error"))
                    url = event.get("url")
                    report.errors.append(f"{url}: {msg}" if url else msg)
                    self.counters.add("crawl.errors")
                    log.warning("source %s: %s%s", sid, msg, f" ({url})" if url else "")
                elif kind == "warning":
                    report.warnings.append((str(event.get("reason", "warning")), str(event.get("message", ""))))
                    self.counters.add(f"crawl.warnings.{event.get('reason', 'warning')}")
                elif kind == "source_done":
                    self._flush_reach(reach[sid], report)
                    self._finish(sid, buffers[sid], report, bool(event.get("ok")), validators.get(sid))
                    done.add(sid)
                if self._stop.is_set():
                    log.info("stop requested: ending the pass after the batch in hand")
                    break
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
            for sid in source_ids:
                if sid not in done:
                    # The crawler ended (crash, stop, timeout) before finishing this source:
                    # index what arrived, but keep the old validators so nothing is skipped.
                    reports[sid].errors.append("crawl ended before the source finished")
                    self._flush_reach(reach[sid], reports[sid])
                    self._finish(sid, buffers[sid], reports[sid], False, None)
        for r in reports.values():
            log.info(
                "source %s: fetched=%d new=%d updated=%d unchanged=%d dropped=%s ok=%s",
                r.source_id,
                r.fetched,
                r.new,
                r.updated,
                r.unchanged,
                dict(r.dropped),
                r.ok,
            )
        return list(reports.values())

    def _finish(
        self,
        sid: str,
        buffer: list[tuple[str, Document]],
        report: SourceReport,
        ok: bool,
        validators: dict[str, Any] | None,
    ) -> None:
        try:
            self._flush(sid, buffer, report)
        except NarrawatchError as exc:
            ok = False
            report.errors.append(f"indexing failed: {exc}")
            log.error("source %s: indexing failed, validators not advanced: %s", sid, exc)
        report.ok = ok
        error = "; ".join(report.errors[-3:]) if not ok else ""
        if report.warnings:  # once per source and pass; every message is in the source's health
            reasons = Counter(reason for reason, _ in report.warnings)
            log.warning(
                "source %s: %d warnings this pass (%s); first: %s",
                sid,
                len(report.warnings),
                ", ".join(f"{r}={n}" for r, n in sorted(reasons.items())),
                report.warnings[0][1],
            )
        self.state.record_result(
            sid, ok=ok, now=utcnow(), error=error, validators=validators if ok else None, warnings=report.warnings
        )

    def _flush_reach(self, buffer: list[ReachUpdate], report: SourceReport) -> None:
        """Write a source's pending reach updates (a failure is logged: counters are not content)."""
        if not buffer:
            return
        batch = list(buffer)
        buffer.clear()
        try:
            with self._write_lock:
                done = self.index.update_reach(batch)
        except NarrawatchError as exc:
            log.warning("source %s: reach update of %d documents failed: %s", report.source_id, len(batch), exc)
            self.counters.add("index.reach_failed", len(batch))
            return
        report.reach_updated += len(done)
        self.counters.add("index.reach_updated", len(done))

    def _flush(self, sid: str, buffer: list[tuple[str, Document]], report: SourceReport) -> None:
        if not buffer:
            return
        batch = list(buffer)
        buffer.clear()
        result = self.index_documents([doc for _, doc in batch])
        report.new += len(result.new)
        report.updated += len(result.updated)
        report.unchanged += len(result.unchanged)
        report.carried += len(result.carried)
        report.rejected += len(result.rejected)
        # A permanent rejection is settled: marked seen so it is not fetched and resent every pass.
        rejected = set(result.rejected)
        if rejected:
            self.state.record_rejected(sid, [(key, doc.id) for key, doc in batch if doc.id in rejected], utcnow())
        acked = set(result.new) | set(result.updated) | set(result.unchanged) | set(result.carried) | rejected
        self.state.mark_seen(sid, [(key, doc.id) for key, doc in batch if doc.id in acked], utcnow())
        missing = [doc.id for _, doc in batch if doc.id not in acked]
        if missing:
            report.errors.append(f"{len(missing)} documents not acknowledged by the index")
            raise NarrawatchError(f"index did not acknowledge {len(missing)} documents, e.g. {missing[0]}")

    def index_documents(self, docs: Sequence[Document]) -> UpsertResult:
        """Embed and upsert documents (skipping unchanged ones); then run the hooks.

        A hook failure raises :class:`NarrawatchError`: the batch then counts as not acknowledged,
        so its items are not marked seen and the next pass brings them back.

        A document whose id another source owns is not written: it is recorded as a sighting and
        reported in ``UpsertResult.carried`` (see the module docstring for who owns an id).
        """
        now = utcnow()
        docs = [self._storable(d, now) for d in docs]
        with self._write_lock:
            known = self.index.content_hashes(list(dict.fromkeys(d.id for d in docs)))
            stored = {i: doc.source_id for i in known if (doc := self.index.get(i)) is not None}
            unique, repeats, takeovers = self.ownership.owned(docs, stored)
            carried = tuple(i for i in dict.fromkeys(d.id for d in docs) if i not in unique)
            same_text = [i for i in takeovers if known.get(i) == unique[i].content_hash]
            if same_text:  # the index skips an unchanged hash: remove the old owner's copy first
                self.index.delete(same_text)
                for i in same_text:
                    known.pop(i, None)
            for i in takeovers:
                log.warning("document %s: %s serves its URL, taking it over from %s", i, unique[i].source_id, stored[i])
            unchanged = tuple(i for i, d in unique.items() if known.get(i) == d.content_hash)
            todo = [d for i, d in unique.items() if known.get(i) != d.content_hash]
            indexed = embed_each(self.embedder, todo)
            self.counters.add("embed.passages", sum(len(d.passages) for d in todo))
            result = self.index.upsert(indexed) if indexed else UpsertResult()
            result = UpsertResult(
                result.new, result.updated, result.unchanged + unchanged + tuple(repeats), result.rejected, carried
            )
            rows = self.ownership.sightings(docs, result, now)
            if rows:
                self.sightings.record(rows)
            self._record_evidence(docs, result)
            self.counters.add("index.carried", len(carried))
            self.counters.add("index.rejected", len(result.rejected))
            self.counters.add("index.new", len(result.new))
            self.counters.add("index.updated", len(result.updated))
            self.counters.add("index.unchanged", len(result.unchanged))
        changed = set(result.new) | set(result.updated)
        fresh = [x for x in indexed if x.document.id in changed]
        if self.hooks and unchanged:
            # The crawler only sends items it has not seen acknowledged, so an unchanged document
            # here was indexed by a pass that died before marking it seen (or before its hooks
            # ran). Run the hooks again on its stored vectors (matching is idempotent).
            fresh.extend(self._stored(unique, unchanged))
        for hook in self.hooks:
            try:
                hook(fresh, result)
            except Exception as exc:
                # Not acknowledged: the items stay unseen and come back on the next pass.
                log.exception("post-index hook %r failed", hook)
                self.counters.add("hooks.failed")
                raise NarrawatchError(f"post-index hook failed: {exc}") from exc
        return result

    def _record_evidence(self, docs: Sequence[Document], result: UpsertResult) -> None:
        """Captures and versions of an acknowledged batch (before its items are marked seen).

        A stored document's text becomes a version (version 1 when new; a changed text the next
        one; the same text only moves ``last_seen``); a carried copy (another source owns the id)
        adds its capture only, never a version of the owner's text.
        """
        versioned = set(result.new) | set(result.updated) | set(result.unchanged)
        carried = set(result.carried)
        for doc in docs:
            if doc.capture is None:
                continue
            if doc.id in versioned:
                if self.evidence.record_version(doc.id, doc.title, doc.text, doc.capture, seen=doc.fetched):
                    self.counters.add("evidence.versions")
            elif doc.id in carried:
                self.evidence.record_capture(doc.id, doc.capture)

    def _storable(self, doc: Document, now: datetime) -> Document:
        """The document with unstorable values replaced; each replacement logged and counted."""
        out = clamp_storable(doc, now)
        for name, info in dict(out.extra.get("clamped") or {}).items():
            reason = str(info.get("reason", "clamped")) if isinstance(info, dict) else "clamped"
            claimed = info.get("claimed", "") if isinstance(info, dict) else info
            self.counters.add(f"normalise.{reason}")
            log.warning("source %s: document %s: %s %r replaced (%s)", doc.source_id, doc.id, name, claimed, reason)
        return out

    def _stored(self, docs: dict[str, Document], ids: Sequence[str]) -> list[IndexedDocument]:
        """Documents with the passage vectors the index holds for them."""
        pv = self.index.passage_vectors(SearchFilters(document_ids=tuple(ids)))
        rows: dict[str, dict[int, int]] = {}
        for r, (doc_id, idx) in enumerate(zip(pv.document_ids, pv.passage_indexes, strict=True)):
            rows.setdefault(doc_id, {})[idx] = r
        out = []
        for doc_id in ids:
            doc = docs[doc_id]
            mine = rows.get(doc_id, {})
            if len(mine) == len(doc.passages) and doc.passages:
                order = [mine[p.index] for p in doc.passages]
                out.append(IndexedDocument(doc, pv.vectors[order]))
        return out
