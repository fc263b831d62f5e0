"""``narratives learn`` for a config: gold files + background + verdicts -> ``<config>/learned/``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.errors import ConfigError, ConfigIssue
from monitors.decision import save_learned
from monitors.evaluate import GoldItem, gold_item, load_gold
from monitors.learn import file_digest, learn
from monitors.narratives import NarrativeMatcher
from narrawatch.app import App
from narrawatch.verdict_export import app_verdict_gold_lines

__all__ = ["learn_command", "verdict_items"]

log = logging.getLogger(__name__)


def verdict_items(app: App) -> list[GoldItem]:
    """Analysts' verdicts in the match store, as gold items (a rejection speaks for one narrative)."""
    return [gold_item(line) for line in app_verdict_gold_lines(app)]


def learn_command(
    app: App,
    gold_paths: Sequence[Path | str],
    *,
    background: Sequence[Path | str] = (),
    verdicts: bool = True,
    write: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Fit the decision stage of every enabled narrative; with ``write``, store it with the config.

    The stored state is bound to the running embedding space (a matcher in another space refuses
    it) and, per narrative, to its exemplars, counter-exemplars and keywords.
    """
    gold = [g for path in gold_paths for g in load_gold(path)]
    bg = [g for path in background for g in load_gold(path, background=True)]
    votes = verdict_items(app) if verdicts else []
    if not gold and not votes:
        raise ConfigError(
            [ConfigIssue("narratives learn", "--gold", "nothing to learn from: no gold file and no verdicts")]
        )
    matcher = NarrativeMatcher(app.catalogue, app.embedder, use_learned=False)  # thresholds only
    if not matcher.narratives:
        raise ConfigError([ConfigIssue("narratives", "", "no enabled narratives to learn")])
    sources = [file_digest(p) for p in [*gold_paths, *background]]
    if votes:
        sources.append(f"verdicts: {len(votes)} from the match store")
    state = learn(matcher, [*gold, *votes], bg, sources=sources, progress=progress)
    written: list[str] = []
    if write:
        written = [str(p) for p in save_learned(app.config.root, state)]
        log.info("learned state for %d narratives written to %s", len(state.models), written[0])
    narratives = {
        nid: {
            "suggest": m.suggest,
            "alert": m.alert,
            "alert_similarity": m.alert_similarity,
            "floor": m.floor,
            "by_language": dict(m.by_language),
            **dict(m.metrics),
        }
        for nid, m in sorted(state.models.items())
    }
    report = dict(state.report)
    return {
        "space": state.space_key,
        "model": state.model,
        "created": state.created,
        "sources": list(state.sources),
        "gold": report["gold"] - len(votes),
        "verdicts": len(votes),
        "background": report["background"],
        "learned": report["learned"],
        "skipped": report["skipped"],
        "seconds": report["seconds"],
        "narratives": narratives,
        "written": written,
    }
