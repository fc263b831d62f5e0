"""A small real world for API and web tests.

A config directory (telegram sources, two narratives, alert rules), an embedded index with the
hashing embedder holding 240 real Russian Telegram posts (tests/data/index/posts.jsonl and
tests/data/alerts/telegram_timeline.jsonl) plus one hostile page, matches for the timeline
posts in the real MatchStore, alerts raised by the real detectors and alert engine into the
real outbox, and a failing source in the crawl state. Tokens: one per role, one revoked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alerts.rules import AlertEngine, make_alert, run_rules
from core.events import DetectorEvent
from core.matches import Match
from core.settings import Config, load_config
from crawlers.normalize import fingerprint, make_document
from crawlers.state import CrawlStateStore
from index.embed import HashingEmbedder
from index.local import EmbeddedIndex
from monitors.store import MatchStore
from narrawatch.app import App
from narrawatch.http.tokens import TokenStore
from narrawatch.pipeline import Pipeline
from tests.support.posts import telegram_document
from tests.support.timeline import load_posts, posts_to_matches

DATA = Path(__file__).resolve().parents[1] / "data"
POSTS = DATA / "index" / "posts.jsonl"
TIMELINE = DATA / "alerts" / "telegram_timeline.jsonl"
NOW = datetime(2024, 11, 21, 18, tzinfo=UTC)

HOSTILE_ID = "u:hostile0000000000000000000000001"
HOSTILE_TITLE = '<script>alert(1)</script>Выборы <img src=x onerror=alert(1)> "quoted" & </title>'
HOSTILE_TEXT = (
    'Выборы и фальсификации <b>broken <i>markup <a href="javascript:alert(1)">click</a> '
    "<svg onload=alert(1)><script>document.body.dataset.pwned='1'</script>\n\n"
    "Второй абзац: выборы в парламент </textarea><iframe src=javascript:alert(1)>"
)
HOSTILE_URL = "javascript:alert(1)"
HOSTILE_OUTLET = "<img src=x onerror=alert(1)>evil.example"

NARRATIVES = {
    "n-nuclear-threat": (
        "Nuclear threat",
        "Russia's nuclear weapons are presented as a threat the West must yield to.",
        ["Россия может применить ядерное оружие против Запада.", "Орешник уничтожит любые цели в Европе."],
    ),
    "n-sanctions-relief": (
        "Sanctions are failing",
        "Western sanctions hurt Europe more than Russia.",
        ["Санкции бьют по Европе сильнее, чем по России."],
    ),
}


@dataclass
class World:
    """Everything a test needs."""

    config: Config
    app: App
    tokens: dict[str, str]
    alert_ids: list[str]
    doc_ids: list[str]


def _write_config(root: Path, posts: list[dict[str, Any]]) -> None:
    channels = sorted({abs(int(p["channel_id"])) for p in posts})
    lines = ["sources:"]
    for cid in channels:
        lines.append(f"  - {{id: tg{cid}, kind: telegram, channel: c{cid}}}")
    lines.append('  - {id: evil-site, kind: feed, url: "http://127.0.0.1:9/rss", outlet: "<b>evil</b>"}')
    (root / "sources.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "service.yaml").write_text("embedding: {model: hashing}\n", encoding="utf-8")
    (root / "narratives").mkdir()
    for nid, (title, desc, ru) in NARRATIVES.items():
        doc = {"id": nid, "title": title, "description": desc, "exemplars": {"ru": ru}}
        (root / "narratives" / f"{nid}.yaml").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    (root / "alerts.yaml").write_text(
        "rules:\n"
        "  - {id: recurrence, detector: recurrence, options: {window: 24h, min_matches: 3, min_outlets: 2},"
        " severity: warning}\n"
        "  - {id: spike, detector: spike, severity: critical}\n"
        "  - {id: new-outlet, detector: new_outlet, options: {lookback: 1h}, severity: info}\n",
        encoding="utf-8",
    )


def _documents(posts: list[dict[str, Any]]) -> list[Any]:
    docs = [telegram_document(p, NOW) for p in posts]
    docs.append(
        make_document(
            source_id="evil-site",
            kind="site",
            url="https://evil.example/a",
            title=HOSTILE_TITLE,
            text=HOSTILE_TEXT,
            published=datetime(2024, 11, 21, 12, tzinfo=UTC),
            fetched=NOW,
            language_hint="ru",
            outlet=HOSTILE_OUTLET,
            links=("javascript:alert(1)", "https://ok.example/x"),
            doc_id=HOSTILE_ID,
        )
    )
    # The stored URL is hostile too (a crawler bug or a crafted feed must not become a live link).
    import dataclasses

    docs[-1] = dataclasses.replace(docs[-1], url=HOSTILE_URL)
    return docs


def _hostile_match() -> Match:
    return Match(
        document_id=HOSTILE_ID,
        narrative_id="n-nuclear-threat",
        score=0.9,
        tier="alert",
        passage_index=0,
        passage_text=HOSTILE_TEXT,
        exemplar="Россия может применить ядерное оружие против Запада.",
        exemplar_language="ru",
        model="hashing",
        source_id="evil-site",
        outlet=HOSTILE_OUTLET,
        language="ru",
        published=datetime(2024, 11, 21, 12, tzinfo=UTC),
        url=HOSTILE_URL,
        title=HOSTILE_TITLE,
        similarity=0.8,
        fingerprint=fingerprint(HOSTILE_TEXT),
    )


@contextmanager
def build_world(root: Path) -> Iterator[World]:
    """Create the world under ``root`` (config in root/config); closes everything on exit."""
    cfg_dir = root / "config"
    cfg_dir.mkdir(parents=True)
    posts = [json.loads(x) for x in POSTS.read_text(encoding="utf-8").splitlines() if x.strip()]
    timeline = load_posts(TIMELINE)
    _write_config(cfg_dir, posts + timeline)  # type: ignore[arg-type]
    config = load_config(cfg_dir)
    emb = HashingEmbedder()
    index = EmbeddedIndex(config.index_path, emb.space)
    state = CrawlStateStore(config.data_dir / "state.db")
    pipeline = Pipeline(config, embedder=emb, index=index, state=state)
    app = App(config, embedder=emb, index=index, state=state, pipeline=pipeline)
    try:
        docs = _documents(posts + timeline)  # type: ignore[arg-type]
        pipeline.index_documents(docs)
        by_source: dict[str, list[tuple[str, str]]] = {}
        for d in docs:
            by_source.setdefault(d.source_id, []).append((d.id.rsplit("/", 1)[-1], d.id))
        for sid, items in by_source.items():
            state.mark_seen(sid, items, NOW)
            state.record_result(sid, ok=True, now=NOW)
        state.record_result("evil-site", ok=False, now=NOW, error="<script>alert(1)</script> HTTP 500")
        matches = posts_to_matches(timeline)
        matches = [m for m in matches if m.narrative_id != "n-dev-courses"] + [_hostile_match()]
        with MatchStore(config.data_dir / "matches.sqlite") as store:
            store.add(matches)
            cfg = app.alerts_config
            titles = {nid: t for nid, (t, _, _) in NARRATIVES.items()}
            with nullcontext(app.outbox) as outbox:  # the App closes it
                events = run_rules(cfg, store, [], NOW, titles)
                made = AlertEngine(cfg, outbox).process(events, NOW)
                hostile = DetectorEvent(
                    detector="new_outlet",
                    key="n-nuclear-threat|evil",
                    narrative_id="n-nuclear-threat",
                    source_id="evil-site",
                    title="New outlet: " + HOSTILE_OUTLET + HOSTILE_TITLE,
                    summary=HOSTILE_TEXT,
                    window_start=NOW - timedelta(hours=6),
                    window_end=NOW,
                    outlets=(HOSTILE_OUTLET,),
                    evidence=(_hostile_match(),),
                    rule="new-outlet",
                    narrative_title="Nuclear threat",
                )
                evil = make_alert(cfg.rule("new-outlet"), [hostile], NOW - timedelta(minutes=5))
                outbox.enqueue(evil, ["webhook"])
                made.append(evil)
        tokens = {}
        with TokenStore.for_config(config) as ts:
            tokens["read"] = ts.create("reader", "read")
            tokens["analyst"] = ts.create("alice", "analyst")
            tokens["revoked"] = ts.create("bob", "analyst")
            ts.revoke("bob")
        yield World(config, app, tokens, [a.id for a in made], [d.id for d in docs])
    finally:
        app.close()
