"""Analysts' verdicts on narrative matches: confirmed or rejected, by whom, when, and why.

Verdicts live in the match store's database, SQLite file or PostgreSQL state schema (tables
created by :class:`~monitors.store.MatchStore`):

* ``verdicts`` holds the **latest** verdict per match id; a later verdict on the same match
  replaces it. This is what every reader (the detectors' exclusion, review screens, exports) uses.
* ``verdict_history`` keeps every verdict ever recorded, in order (:func:`verdict_history`), so a
  changed mind stays auditable.

A row copies what the analyst judged (language, title, passage) so an export still works when the
document has left the index. A match whose latest verdict is ``rejected`` never counts towards a
detector again (the store leaves it out of its reads, and re-storing it does not bring it back).

Gold lines (:func:`gold_line`) feed ``narratives eval``/``learn``: ``narratives`` is
``[narrative_id]`` for a confirmation and ``[]`` for a rejection, and ``judged`` says the label
speaks only for that narrative (a rejection says "not narrative X", nothing about the others).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

from core.errors import UnknownNameError
from core.matches import Match
from core.sqlite import Where
from core.timefmt import from_us, to_us
from monitors.store import MATCH_COLUMNS, VERDICT_COLUMNS, VERDICT_UPSERT, MatchStore, decode_match

__all__ = [
    "VERDICTS",
    "UnknownMatchError",
    "Verdict",
    "VerdictFilter",
    "VerdictValue",
    "get_match",
    "get_verdict",
    "gold_line",
    "list_matches",
    "list_verdicts",
    "record_verdict",
    "verdict_history",
    "verdicts_for",
]

log = logging.getLogger(__name__)

VerdictValue = Literal["confirmed", "rejected"]
VerdictFilter = Literal["confirmed", "rejected", "none"]
"""``none``: matches without any verdict yet."""
VERDICTS: tuple[VerdictValue, ...] = ("confirmed", "rejected")

_MAX_NOTE = 2000


class UnknownMatchError(UnknownNameError):
    """No stored match has this id."""

    def __init__(self, match_id: str) -> None:
        super().__init__("match", match_id, ())
        self.args = (
            f"unknown match {match_id!r}: no stored match has this id (ids are 16 hex digits; "
            "see 'narrawatch matches list')",
        )


@dataclass(frozen=True)
class Verdict:
    """An analyst's judgement of one match, with a copy of what was judged."""

    match_id: str
    document_id: str
    narrative_id: str
    verdict: VerdictValue
    analyst: str
    note: str
    at: datetime
    language: str
    title: str
    passage_text: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: every field, ``at`` as ISO-8601 UTC."""
        return {
            "match_id": self.match_id,
            "document_id": self.document_id,
            "narrative_id": self.narrative_id,
            "verdict": self.verdict,
            "analyst": self.analyst,
            "note": self.note,
            "at": self.at.isoformat(),
            "language": self.language,
            "title": self.title,
            "passage_text": self.passage_text,
        }


def _verdict(row: Sequence[Any]) -> Verdict:
    return Verdict(
        match_id=row[0],
        document_id=row[1],
        narrative_id=row[2],
        verdict=cast(VerdictValue, row[3]),
        analyst=row[4],
        note=row[5],
        at=from_us(row[6]),
        language=row[7],
        title=row[8],
        passage_text=row[9],
    )


def get_match(store: MatchStore, match_id: str) -> Match:
    """The stored match (rejected ones too); :class:`UnknownMatchError` if there is none."""
    m = store.get(match_id)
    if m is None:
        raise UnknownMatchError(match_id)
    return m


def record_verdict(
    store: MatchStore,
    match_id: str,
    verdict: str,
    *,
    analyst: str,
    note: str = "",
    now: datetime | None = None,
) -> Verdict:
    """Record ``verdict`` on a stored match (replacing an earlier one) and append it to the history.

    ``ValueError`` for a verdict other than ``confirmed``/``rejected``; :class:`UnknownMatchError`
    when no stored match has ``match_id``.
    """
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    m = get_match(store, match_id)
    v = Verdict(
        match_id=m.id,
        document_id=m.document_id,
        narrative_id=m.narrative_id,
        verdict=verdict,
        analyst=analyst.strip() or "unknown",
        note=note.strip()[:_MAX_NOTE],
        at=(now or datetime.now(UTC)).astimezone(UTC),
        language=m.language,
        title=m.title,
        passage_text=m.passage_text,
    )
    row = (
        v.match_id,
        v.document_id,
        v.narrative_id,
        v.verdict,
        v.analyst,
        v.note,
        to_us(v.at),
        v.language,
        v.title,
        v.passage_text,
    )
    marks = ", ".join("?" * len(row))
    with store.transaction() as conn:
        # The upsert first: it locks the match's verdict row, so of two analysts judging at once the
        # later writer also appends later (on PostgreSQL too), and the history's last is the current one.
        conn.execute(VERDICT_UPSERT, row)
        conn.execute(f"INSERT INTO verdict_history ({VERDICT_COLUMNS}) VALUES ({marks})", row)
    log.info("verdict %s on match %s (%s) by %s", v.verdict, v.match_id, v.narrative_id, v.analyst)
    return v


def get_verdict(store: MatchStore, match_id: str) -> Verdict | None:
    """The latest verdict on a match, or None."""
    with store.connection() as conn:
        row = conn.execute(f"SELECT {VERDICT_COLUMNS} FROM verdicts WHERE match_id = ?", (match_id,)).fetchone()
    return None if row is None else _verdict(row)


def verdicts_for(store: MatchStore, match_ids: Iterable[str]) -> dict[str, Verdict]:
    """match id -> latest verdict, for the ids that have one."""
    ids = sorted(set(match_ids))
    out: dict[str, Verdict] = {}
    with store.connection() as conn:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            sql = f"SELECT {VERDICT_COLUMNS} FROM verdicts WHERE match_id IN ({', '.join('?' * len(chunk))})"
            for row in conn.execute(sql, chunk):
                out[row[0]] = _verdict(row)
    return out


def list_verdicts(
    store: MatchStore,
    *,
    narrative_id: str | None = None,
    verdict: VerdictValue | None = None,
    limit: int | None = None,
) -> list[Verdict]:
    """Latest verdicts, newest first, optionally of one narrative and/or one kind."""
    where = Where().equal("narrative_id", narrative_id).equal("verdict", verdict)
    sql, args = where.select(f"SELECT {VERDICT_COLUMNS} FROM verdicts", "at DESC, match_id", limit=limit)
    with store.connection() as conn:
        return [_verdict(r) for r in conn.execute(sql, args)]


def verdict_history(store: MatchStore, match_id: str) -> list[Verdict]:
    """Every verdict recorded on a match, oldest first (the last one is the current verdict)."""
    with store.connection() as conn:
        rows = conn.execute(
            f"SELECT {VERDICT_COLUMNS} FROM verdict_history WHERE match_id = ? ORDER BY seq", (match_id,)
        ).fetchall()
    return [_verdict(r) for r in rows]


def list_matches(
    store: MatchStore,
    *,
    narrative_id: str | None = None,
    verdict: VerdictFilter | None = None,
    limit: int | None = 50,
) -> list[tuple[Match, Verdict | None]]:
    """Stored matches (rejected ones too), newest first, each with its latest verdict.

    ``verdict`` keeps only matches with that latest verdict (``none``: without a verdict).
    """
    cols = ", ".join("m." + c for c in MATCH_COLUMNS.split(", "))
    vcols = ", ".join("v." + c for c in VERDICT_COLUMNS.split(", "))
    where = Where().equal("m.narrative_id", narrative_id)
    if verdict == "none":
        where.add("v.match_id IS NULL")
    else:
        where.equal("v.verdict", verdict)
    sql, args = where.select(
        f"SELECT {cols}, {vcols} FROM matches AS m LEFT JOIN verdicts AS v ON v.match_id = m.match_id",
        "m.published DESC, m.document_id, m.narrative_id",
        limit=limit,
    )
    n = len(MATCH_COLUMNS.split(", "))
    with store.connection() as conn:
        rows = conn.execute(sql, args).fetchall()
    return [(decode_match(r[:n]), None if r[n] is None else _verdict(r[n:])) for r in rows]


def gold_line(v: Verdict, text: str | None = None) -> dict[str, Any]:
    """One gold JSONL object for a verdict.

    ``text`` is the document's full text when the caller has it (from the index); otherwise the
    stored passage stands in. The title, when there is one, comes first (the gold loader takes
    the first line as the title).
    """
    body = text if text else v.passage_text
    return {
        "text": f"{v.title}\n\n{body}" if v.title else body,
        "title": v.title,
        "language": v.language,
        "narratives": [v.narrative_id] if v.verdict == "confirmed" else [],
        "judged": [v.narrative_id],
        "origin": f"verdict:{v.match_id}",
        "verdict": v.verdict,
        "analyst": v.analyst,
        "at": v.at.isoformat(),
        "note": v.note,
    }
