"""The evidence store: captures, versions (a new one only when the text changed), deletions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.evidence import Capture
from crawlers.evidence_store import EvidenceStore, text_sha256

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)
DOC = "u:" + "0" * 32


def _capture(n: int, body: str) -> Capture:
    return Capture(
        url="https://example.org/a",
        fetched_at=T0 + timedelta(hours=n),
        status=200,
        sha256=text_sha256(body),
        warc_file=f"f{n}.warc.gz",
        warc_offset=100 * n,
        warc_length=50,
        ip_address="127.0.0.1",
    )


@pytest.fixture
def store(tmp_path: Path) -> EvidenceStore:
    return EvidenceStore(tmp_path / "evidence.sqlite")


def test_versions_only_when_the_text_changes(store: EvidenceStore) -> None:
    first = store.record_version(DOC, "Title", "text one", _capture(0, "a"))
    assert first is not None and first.number == 1 and first.text_sha256 == text_sha256("text one")
    assert store.record_version(DOC, "Title", "text one", _capture(1, "a")) is None  # same text: last_seen moves
    second = store.record_version(DOC, "Title 2", "text two", _capture(2, "b"))
    assert second is not None and second.number == 2
    assert store.record_version(DOC, "Title", "text one", _capture(3, "a")) is not None  # reverted: a 3rd version
    versions = store.versions(DOC)
    assert [v.number for v in versions] == [1, 2, 3]
    assert versions[0].first_seen == T0 and versions[0].last_seen == T0 + timedelta(hours=1)
    assert versions[1].capture == _capture(2, "b") and versions[1].title == "Title 2"
    assert [c.fetched_at for c in store.captures(DOC)] == [T0 + timedelta(hours=n) for n in range(4)]
    assert store.version_counts([DOC, "u:other"]) == {DOC: 3}
    assert store.latest_version(DOC) == versions[-1]


def test_last_seen_never_moves_backwards(store: EvidenceStore) -> None:
    store.record_version(DOC, "T", "x", _capture(5, "a"))
    store.record_version(DOC, "T", "x", _capture(2, "a"))
    (v,) = store.versions(DOC)
    assert v.last_seen == T0 + timedelta(hours=5)


def test_recording_a_capture_twice_is_a_no_op(store: EvidenceStore) -> None:
    store.record_capture(DOC, _capture(0, "a"))
    store.record_capture(DOC, _capture(0, "a"))
    store.record_version(DOC, "T", "x", _capture(0, "a"))
    assert store.captures(DOC) == [_capture(0, "a")]


def test_deletions(store: EvidenceStore) -> None:
    store.record_version(DOC, "T", "x", _capture(1, "a"))
    gone = store.mark_deleted(DOC, T0 + timedelta(days=1), "gone")
    assert gone is not None and gone.last_seen == T0 + timedelta(hours=1) and gone.reason == "gone"
    assert store.mark_deleted(DOC, T0 + timedelta(days=2), "missing") is None  # the first deletion stands
    assert store.deletion(DOC) == gone
    assert store.deleted_since(T0) == [gone] and store.deleted_since(T0 + timedelta(days=2)) == []
    assert store.deletions([DOC, "u:x"]) == {DOC: gone}
    assert store.clear_deletion(DOC) and store.deletion(DOC) is None and not store.clear_deletion(DOC)


def test_survives_reopening(tmp_path: Path) -> None:
    with EvidenceStore(tmp_path / "e.sqlite") as s:
        s.record_version(DOC, "T", "x", _capture(0, "a"))
    with EvidenceStore(tmp_path / "e.sqlite") as s:
        assert [v.text for v in s.versions(DOC)] == ["x"]
        assert (tmp_path / "e.sqlite").stat().st_mode & 0o077 == 0


def test_version_without_capture_needs_a_time(store: EvidenceStore) -> None:
    with pytest.raises(ValueError):
        store.record_version(DOC, "T", "x", None)
    v = store.record_version(DOC, "T", "x", None, seen=T0)
    assert v is not None and v.capture is None and store.versions(DOC)[0].capture is None
