"""Crawl-state notes: Telegram backfill ranges and id gaps, and the last pass's warnings, in source health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from crawlers.state import KEEP_ID_GAPS, CrawlStateStore

T0 = datetime(2024, 11, 30, 12, 0, tzinfo=UTC)


def test_backfill_moves_like_the_watermark_only_on_a_finished_pass(tmp_path: Path) -> None:
    s = CrawlStateStore(tmp_path / "state.db")
    s.record_result("tg", ok=True, now=T0, validators={"last_message_id": 73590, "backfill": [[73520, 73531]]})
    s.record_result("tg", ok=False, now=T0, error="x", validators={"last_message_id": 99, "backfill": []})
    assert s.job_state("tg")["backfill"] == [[73520, 73531]]
    assert s.health("tg", T0)["backfill_pending"] == 10
    s.close()
    s = CrawlStateStore(tmp_path / "state.db")  # survives a restart
    assert s.notes("tg")["backfill"] == [(73520, 73531)]
    s.record_result("tg", ok=True, now=T0, validators={"last_message_id": 73590, "backfill": []})
    assert s.job_state("tg")["backfill"] == [] and s.health("tg", T0)["notes"] == ""


def test_last_pass_warnings_are_replaced_every_pass_even_a_failed_one(tmp_path: Path) -> None:
    s = CrawlStateStore(tmp_path / "state.db")
    s.record_result("feed", ok=True, now=T0, warnings=[("feed", "a"), ("feed", "b"), ("id_gap", "c")])
    h = s.health("feed", T0)
    assert h["last_pass_warnings"] == 3 and h["warning_reasons"] == {"feed": 2, "id_gap": 1}
    assert h["last_warnings"] == ["a", "b", "c"]
    assert h["notes"] == "last pass: 3 warnings (feed 2, id_gap 1)"
    s.record_result("feed", ok=False, now=T0 + timedelta(minutes=5), error="boom", warnings=[("feed", "d")])
    assert s.health("feed", T0)["last_warnings"] == ["d"]
    s.record_result("feed", ok=True, now=T0 + timedelta(minutes=10))
    assert s.health("feed", T0)["last_pass_warnings"] == 0


def test_id_gaps_accumulate_newest_first_and_are_capped(tmp_path: Path) -> None:
    s = CrawlStateStore(tmp_path / "state.db")
    for i in range(KEEP_ID_GAPS + 5):
        gap = {"first": 1000 * i + 1, "last": 1000 * i + 99, "reason": "absent"}
        s.record_result("tg", ok=True, now=T0, validators={"id_gaps": [gap, gap]})
    gaps = s.health("tg", T0)["id_gaps"]
    assert len(gaps) == KEEP_ID_GAPS and gaps[0] == [1000 * (KEEP_ID_GAPS + 4) + 1, 1000 * (KEEP_ID_GAPS + 4) + 99]
    s.record_result("tg", ok=True, now=T0, validators={"last_message_id": 5, "id_gaps": []})
    assert len(s.health("tg", T0)["id_gaps"]) == KEEP_ID_GAPS
