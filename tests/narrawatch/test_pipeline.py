"""The ingest pass over a crawler event stream: exactly-once indexing, state only on acknowledgement.

The crawler subprocess is replaced by a generator of the same events it prints (its own tests
run the real subprocess against a loopback server); everything after it is real: normalisation,
the hashing embedder, the embedded index, the crawl-state store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.documents import IndexedDocument, UpsertResult, document_id_for_telegram
from core.errors import IndexBackendError
from core.serialize import document_to_dict
from core.settings import Config, load_config
from crawlers.normalize import make_document
from crawlers.state import CrawlStateStore
from index.embed import HashingEmbedder
from index.local import EmbeddedIndex
from narrawatch.pipeline import Pipeline

DATA = Path(__file__).resolve().parents[1] / "data" / "index" / "posts.jsonl"


def real_posts(n: int) -> list[dict[str, Any]]:
    with DATA.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh][:n]


def tg_events(
    source: str,
    posts: Sequence[dict[str, Any]],
    *,
    done: bool = True,
    ok: bool = True,
    validators: dict[str, Any] | None = None,
    edit: str = "",
) -> Iterator[dict[str, Any]]:
    for p in posts:
        doc = make_document(
            source_id=source,
            kind="telegram",
            url=f"https://t.me/{source}/{p['message_id']}",
            title="",
            text=p["text"] + edit,
            published=datetime.fromisoformat(p["date"]),
            fetched=datetime(2024, 12, 1, tzinfo=UTC),
            doc_id=document_id_for_telegram(source, p["message_id"]),
            extraction="telegram",
        )
        yield {"event": "fetched", "source": source, "url": doc.url, "status": 200}
        yield {"event": "document", "source": source, "key": str(p["message_id"]), "document": document_to_dict(doc)}
    if validators:
        yield {"event": "state", "source": source, "state": validators}
    if done:
        yield {"event": "source_done", "source": source, "ok": ok, "counts": {}}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    (tmp_path / "sources.yaml").write_text(
        "sources:\n  - {id: chan, kind: telegram, channel: chan_demo}\n"
        '  - {id: feed, kind: feed, url: "http://127.0.0.1:9/rss"}\n',
        encoding="utf-8",
    )
    return load_config(tmp_path)


def make_pipeline(config: Config, events: Any, index: Any = None) -> Pipeline:
    emb = HashingEmbedder()
    idx = index or EmbeddedIndex(config.index_path, emb.space)
    return Pipeline(
        config,
        embedder=emb,
        index=idx,
        state=CrawlStateStore(config.data_dir / "state.db"),
        crawl=lambda cfg, sources, state: events(state),
    )


def test_first_pass_indexes_everything_once_and_marks_seen(config: Config) -> None:
    posts = real_posts(40)
    p = make_pipeline(config, lambda state: tg_events("chan", posts + posts[:5]))  # 5 repeated in the stream
    (report,) = p.ingest(["chan"])
    assert report.ok and report.new == 40 and report.unchanged == 5 and report.fetched == 45
    assert p.index.stats().documents == 40
    assert set(p.state.seen_keys("chan")) == {str(x["message_id"]) for x in posts}
    doc = p.index.get(document_id_for_telegram("chan", posts[0]["message_id"]))
    assert doc is not None and doc.text.startswith(posts[0]["text"].strip()[:30])


def test_second_pass_reembeds_nothing_and_updates_changed_text(config: Config) -> None:
    posts = real_posts(30)
    p = make_pipeline(config, lambda state: tg_events("chan", posts))
    p.ingest(["chan"])
    embedded = p.counters.get("embed.passages")
    (again,) = p.ingest(["chan"])
    assert again.new == 0 and again.unchanged == 30 and p.counters.get("embed.passages") == embedded
    p.crawl = lambda cfg, s, st: tg_events("chan", posts[:3], edit="\n\nОбновлено: уточнены детали.")
    (edited,) = p.ingest(["chan"])
    assert edited.updated == 3 and edited.new == 0
    doc = p.index.get(document_id_for_telegram("chan", posts[0]["message_id"]))
    assert doc is not None and doc.text.endswith("Обновлено: уточнены детали.")


def test_validators_stored_only_when_the_source_finished(config: Config) -> None:
    posts = real_posts(10)
    p = make_pipeline(config, lambda state: tg_events("feed", posts, done=False, validators={"etag": "v2"}))
    (report,) = p.ingest(["feed"])
    assert not report.ok and "crawl ended before the source finished" in report.errors
    st = p.state.get("feed")
    assert st.etag is None and st.consecutive_failures == 1
    assert p.index.stats().documents == 10  # what did arrive is indexed, and marked seen
    assert len(p.state.seen_keys("feed")) == 10
    p.crawl = lambda cfg, s, state: tg_events("feed", posts, validators={"etag": "v2"})
    (ok,) = p.ingest(["feed"])
    assert ok.ok and p.state.get("feed").etag == "v2" and p.state.get("feed").consecutive_failures == 0


class RefusingIndex(EmbeddedIndex):
    """A real embedded index whose upserts fail (a full disk, a lost ES connection)."""

    def upsert(self, docs: Sequence[IndexedDocument]) -> UpsertResult:
        raise IndexBackendError("disk full")


def test_unacknowledged_documents_are_not_marked_seen(config: Config) -> None:
    posts = real_posts(10)
    emb = HashingEmbedder()
    p = make_pipeline(
        config,
        lambda state: tg_events("feed", posts, validators={"etag": "v9"}),
        index=RefusingIndex(config.index_path, emb.space),
    )
    (report,) = p.ingest(["feed"])
    assert not report.ok and any("disk full" in e for e in report.errors)
    assert p.state.seen_keys("feed") == [] and p.state.get("feed").etag is None


def test_hooks_see_new_and_updated_documents_with_their_vectors(config: Config) -> None:
    posts = real_posts(12)
    p = make_pipeline(config, lambda state: tg_events("chan", posts))
    seen: dict[str, Any] = {}
    p.hooks.append(lambda docs, result: seen.update({d.document.id: d.vectors for d in docs}))
    p.ingest(["chan"])
    assert len(seen) == 12 and all(v.shape[0] >= 1 for v in seen.values())
    first = dict(seen)
    seen.clear()
    # The crawler re-sends only items never acknowledged as seen (a pass that died after the
    # upsert): their hooks run again, on the vectors stored in the index, without re-embedding.
    embedded = p.counters.get("embed.passages")
    p.ingest(["chan"])
    assert set(seen) == set(first) and p.counters.get("embed.passages") == embedded
    for doc_id, vecs in seen.items():
        assert vecs.shape == first[doc_id].shape and float(abs(vecs - first[doc_id]).max()) < 1e-6


def test_a_failing_hook_leaves_items_unseen_and_they_come_back(config: Config) -> None:
    posts = real_posts(8)
    p = make_pipeline(config, lambda state: tg_events("chan", posts))
    calls: list[int] = []

    def flaky(docs: Any, result: Any) -> None:
        calls.append(len(docs))
        if len(calls) == 1:
            raise OSError("match store: disk full")

    p.hooks.append(flaky)
    (failed,) = p.ingest(["chan"])
    assert not failed.ok and p.state.seen_keys("chan") == []
    assert any("post-index hook failed" in e for e in failed.errors)
    (ok,) = p.ingest(["chan"])
    assert ok.ok and calls == [8, 8] and len(p.state.seen_keys("chan")) == 8


def test_unknown_source_id_lists_known(config: Config) -> None:
    p = make_pipeline(config, lambda state: iter(()))
    with pytest.raises(KeyError, match="unknown source 'nope'; known: chan, feed"):
        p.ingest(["nope"])
