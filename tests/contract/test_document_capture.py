"""DocumentIndex contract, evidence part: a document's capture (raw body SHA-256, WARC location)
is stored by every backend through the optional-fields JSON and comes back equal."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from core.evidence import Capture
from index.embed import HashingEmbedder
from tests.contract import embed, load_corpus
from tests.contract.conftest import IndexFactory

EMB = HashingEmbedder(256)


def test_capture_round_trips(make_index: IndexFactory) -> None:
    docs = load_corpus()[:3]
    capture = Capture(
        url="https://example.org/a?x=1",
        fetched_at=datetime(2026, 12, 3, 17, 30, 0, 123456, tzinfo=UTC),
        status=200,
        sha256="ab" * 32,
        warc_file="narrawatch-20261203173000-42-00001.warc.gz",
        warc_offset=324,
        warc_length=8200,
        ip_address="2001:db8::1",
    )
    unarchived = replace(capture, warc_file="", warc_offset=0, warc_length=0, ip_address="")
    docs = [replace(docs[0], capture=capture), replace(docs[1], capture=unarchived), docs[2]]
    index = make_index(EMB.space)
    index.upsert(embed(docs, EMB))
    got = [index.get(d.id) for d in docs]
    assert [g.capture if g else "missing" for g in got] == [capture, unarchived, None]
    reopened = make_index.reopen(index)
    stored = reopened.get(docs[0].id)
    assert stored is not None and stored.capture == capture and stored.capture.archived
