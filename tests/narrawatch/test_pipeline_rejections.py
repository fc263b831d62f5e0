"""A document the index refuses permanently is recorded once, counted in source health, and does
not make its source fail (issue 10, item 14).

The Elasticsearch backend runs for real over the in-process node of
``tests/index/test_elastic_requests.py`` (the real client, transport and ``streaming_bulk``; the
bulk item error is shaped as Elasticsearch words a ``date_nanos`` value before 1970). The crawler
is the event generator of ``tests/narrawatch/test_pipeline.py``, which re-sends every post on
every pass, as a crawler does when items were never marked seen.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.documents import document_id_for_telegram
from core.settings import Config, load_config
from crawlers.state import CrawlStateStore
from index.embed import HashingEmbedder
from narrawatch.pipeline import Pipeline
from tests.index.test_elastic_requests import FakeCluster, _open
from tests.narrawatch.test_pipeline import real_posts, tg_events

DATE_BEFORE_EPOCH = {
    "status": 400,
    "error": {
        "type": "document_parsing_exception",
        "reason": "[1:241] failed to parse field [published] of type [date_nanos] in document",
        "caused_by": {
            "type": "illegal_argument_exception",
            "reason": "date[1969-07-20T20:17:40Z] is before the epoch in 1970 and cannot be stored in nanosecond"
            " resolution",
        },
    },
}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    (tmp_path / "sources.yaml").write_text(
        "sources:\n  - {id: chan, kind: telegram, channel: chan_demo}\n", encoding="utf-8"
    )
    return load_config(tmp_path)


def test_a_permanent_rejection_is_counted_not_failed_and_not_resent(config: Config, tmp_path: Path) -> None:
    posts = real_posts(10)
    bad_id = document_id_for_telegram("chan", posts[3]["message_id"])
    cluster = FakeCluster()
    cluster.bulk_item_errors[bad_id] = DATE_BEFORE_EPOCH
    emb = HashingEmbedder()
    index = _open(cluster, tmp_path, space=emb.space)
    state = CrawlStateStore(config.data_dir / "state.db")
    pipeline = Pipeline(
        config, embedder=emb, index=index, state=state, crawl=lambda cfg, sources, st: tg_events("chan", posts)
    )
    reports = [pipeline.ingest(["chan"])[0] for _ in range(3)]  # three passes

    assert [r.ok for r in reports] == [True, True, True]  # not a source failure
    assert reports[0].new == 9 and reports[0].rejected == 1 and not reports[0].errors
    assert [r.rejected for r in reports[1:]] == [1, 1]  # still refused, without a request
    sent = [a["index"]["_id"] for r in cluster.requests if r.path == "/_bulk" for a in r.body[::2]]
    assert sent.count(bad_id) == 1
    health = state.health("chan", datetime.now(UTC))
    assert health["consecutive_failures"] == 0 and health["rejected_documents"] == 1
    assert str(posts[3]["message_id"]) in state.seen_keys("chan")  # the crawler will skip it
    (record,) = index.deadletter.read()  # one durable record with id, source and reason
    assert (record["id"], record["source_id"]) == (bad_id, "chan") and "before the epoch" in record["reason"]
