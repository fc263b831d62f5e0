"""Analysts' verdicts as gold JSONL lines (for ``narratives eval`` / ``learn``).

Each line is :func:`monitors.verdicts.gold_line` with the document's full text from the index when
the document is still there, else the passage the analyst judged (copied into the verdict).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from core.errors import NarrawatchError
from core.settings import Config
from index.base import DocumentIndex
from monitors.store import MatchStore
from monitors.verdicts import Verdict, gold_line, list_verdicts
from narrawatch.app import App, open_app

__all__ = ["app_verdict_gold_lines", "gold_lines_for", "verdict_gold_lines", "verdict_gold_text"]

log = logging.getLogger(__name__)


def gold_lines_for(verdicts: Iterable[Verdict], index: DocumentIndex | None) -> list[dict[str, Any]]:
    """Gold lines for ``verdicts``; full document text from ``index`` where it has the document."""
    out = []
    for v in verdicts:
        text: str | None = None
        if index is not None:
            try:
                doc = index.get(v.document_id)
            except NarrawatchError as exc:  # the index went away mid-export: the passage still serves
                log.warning("document %s unavailable (%s); exporting the judged passage", v.document_id, exc)
                doc = None
            text = doc.text if doc is not None and doc.text.strip() else None
        out.append(gold_line(v, text))
    return out


def verdict_gold_lines(
    config: Config,
    *,
    narrative_id: str | None = None,
    store: MatchStore | None = None,
    index: DocumentIndex | None = None,
) -> list[dict[str, Any]]:
    """Every latest verdict (optionally of one narrative) as a gold line, newest first.

    Parts not given come from an App opened for ``config`` (the index read-only; if it cannot be
    opened, every line falls back to the stored passage).
    """
    if store is not None and index is not None:
        return gold_lines_for(list_verdicts(store, narrative_id=narrative_id), index)
    with open_app(config, read_only=True) as app:
        return _lines(app, narrative_id, store or app.matches, index)


def app_verdict_gold_lines(app: App, *, narrative_id: str | None = None) -> list[dict[str, Any]]:
    """:func:`verdict_gold_lines` with the App's match store and (read) index."""
    return _lines(app, narrative_id, app.matches, None)


def _lines(app: App, narrative_id: str | None, store: MatchStore, index: DocumentIndex | None) -> list[dict[str, Any]]:
    verdicts = list_verdicts(store, narrative_id=narrative_id)
    if index is None and verdicts:
        try:
            index = app.index
        except NarrawatchError as exc:
            log.warning("index not available (%s): exporting the judged passages only", exc)
    return gold_lines_for(verdicts, index)


def verdict_gold_text(lines: Iterable[dict[str, Any]]) -> str:
    """JSONL text: one object a line, UTF-8 (not ASCII-escaped)."""
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
