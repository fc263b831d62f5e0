"""Re-checks of recent items for edits and deletions: the schedule, its state, and the verdicts.

*Schedule.* An item is fetched again at fixed ages after it was first seen (``recheck.after``,
default 1 h, 6 h, 24 h, 7 d): check number ``n`` (0-based) is due at ``first_seen + after[n]``,
so the checks thin out as the item ages and stop after the last one. A check that could not
decide (a fetch error, a channel page that failed) does not count: it is tried again
``after[0]`` later, never more often. :func:`due_at` is the pure rule; :class:`RecheckStore`
keeps one row per item in ``<data_dir>/recheck.sqlite``.

*Verdicts.* What a re-fetch says about an item (:class:`Outcome`):

* a page or feed item: 404 and 410 are ``gone``; a redirect that lands on the site's front page
  (path ``/`` or empty, the usual answer of a CMS to a removed article) is ``redirected``; 200
  is ``present`` (its text may have changed); anything else (401/403/451, 5xx, network
  errors) is ``unknown``: a blocked or failing site is not a deletion (:func:`classify_page`);
* a Telegram post, read from ``<base>/s/<channel>?before=<id + 1>`` (the page that ends at the
  post): ``present`` when the page shows it, ``missing`` when the page shows other posts of the
  channel but not this one, ``unknown`` when the page shows no post of the channel at all (an
  empty page, a renamed or removed channel, an error page): that is not a per-post deletion
  (:func:`classify_telegram`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from core.sqlite import Database, Store
from core.timefmt import from_us, to_us

__all__ = [
    "DEFAULT_AFTER",
    "DELETED",
    "RECHECK_FILE",
    "RECHECK_KINDS",
    "Outcome",
    "RecheckItem",
    "RecheckStore",
    "Verdict",
    "classify_page",
    "classify_telegram",
    "due_at",
    "is_front_page",
    "recheck_path",
]

RECHECK_FILE = "recheck.sqlite"
RECHECK_KINDS = frozenset({"site", "feed", "telegram"})
"""Source kinds whose items are re-checked (others are not tracked)."""

DEFAULT_AFTER: tuple[timedelta, ...] = (
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(hours=24),
    timedelta(days=7),
)

Outcome = Literal["present", "gone", "redirected", "missing", "unknown"]
DELETED: frozenset[str] = frozenset({"gone", "redirected", "missing"})
"""Outcomes that mark an item deleted (their names are the deletion reasons)."""


def recheck_path(data_dir: Path) -> Path:
    """Where the re-check schedule of an install lives."""
    return data_dir / RECHECK_FILE


def due_at(first_seen: datetime, checks_done: int, after: Sequence[timedelta] = DEFAULT_AFTER) -> datetime | None:
    """When check number ``checks_done`` (0-based) of an item first seen at ``first_seen`` is due.

    None once every check in ``after`` was done.
    """
    if checks_done < 0:
        raise ValueError("checks_done must be >= 0")
    if checks_done >= len(after):
        return None
    return first_seen + after[checks_done]


@dataclass(frozen=True)
class Verdict:
    """What one re-fetch said: the outcome, the HTTP status (0: none) and a short detail."""

    outcome: Outcome
    status: int = 0
    detail: str = ""


def is_front_page(url: str, requested: str) -> bool:
    """Whether ``url`` is the front page (path ``/`` or empty, no query) of ``requested``'s site."""
    got, asked = urlsplit(url), urlsplit(requested)
    same_site = _site(got.hostname or "") == _site(asked.hostname or "")
    return same_site and got.path in ("", "/") and not got.query and asked.path not in ("", "/")


def _site(host: str) -> str:
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def classify_page(status: int, requested: str, final_url: str) -> Verdict:
    """The verdict on a re-fetched page: the final status and URL after redirects (see the module docstring)."""
    if status in (404, 410):
        return Verdict("gone", status, f"HTTP {status}")
    if 200 <= status < 300:
        if final_url != requested and is_front_page(final_url, requested):
            return Verdict("redirected", status, f"redirected to the front page {final_url}")
        return Verdict("present", status)
    return Verdict("unknown", status, f"HTTP {status}: not a deletion")


def classify_telegram(message_ids: Iterable[tuple[str, int]], channel: str, message_id: int) -> Verdict:
    """The verdict on a post from the ids a ``?before=<id + 1>`` page shows (``(channel, id)`` pairs)."""
    own = {i for c, i in message_ids if c.lower() == channel.lower()}
    if message_id in own:
        return Verdict("present", 200)
    if not own:
        return Verdict("unknown", 200, "the page shows no post of the channel (empty, renamed or removed channel)")
    shown = sorted(own)
    return Verdict("missing", 200, f"post {message_id} absent; the page shows posts {shown[0]}-{shown[-1]}")


@dataclass(frozen=True)
class RecheckItem:
    """One tracked item: what to fetch again and where its schedule stands."""

    document_id: str
    source_id: str
    url: str
    first_seen: datetime
    checks: int = 0
    """Checks done that decided something (present or deleted)."""
    next_due: datetime | None = None
    """When the next check is due (None: no more checks)."""
    last_present: datetime | None = None
    """The last time the item was seen present (first seen, or a re-check that found it)."""
    last_outcome: str = ""
    extraction: str = ""
    """How the stored text was made (``page``, ``telegram``, ``feed_content`` ...): only a page or
    a post is compared for edits; an item kept from the feed's own content is checked for deletion only."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS recheck (
    document_id TEXT PRIMARY KEY,
    source_id TEXT NOT NULL,
    url TEXT NOT NULL,
    extraction TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    checks INTEGER NOT NULL,
    next_due INTEGER,
    last_present INTEGER NOT NULL,
    last_outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS recheck_due ON recheck (next_due) WHERE next_due IS NOT NULL;
"""

_COLUMNS = "document_id, source_id, url, extraction, first_seen, checks, next_due, last_present, last_outcome"


def _item(r: Sequence[object]) -> RecheckItem:
    return RecheckItem(
        document_id=str(r[0]),
        source_id=str(r[1]),
        url=str(r[2]),
        extraction=str(r[3]),
        first_seen=from_us(int(str(r[4]))),
        checks=int(str(r[5])),
        next_due=None if r[6] is None else from_us(int(str(r[6]))),
        last_present=from_us(int(str(r[7]))),
        last_outcome=str(r[8]),
    )


class RecheckStore(Store):
    """The re-check schedule: one row per tracked item (SQLite, thread-safe)."""

    def __init__(self, path: Path, after: Sequence[timedelta] = DEFAULT_AFTER) -> None:
        self._db = Database(path, synchronous="NORMAL")
        self._db.script(_SCHEMA)
        self.after = tuple(after)

    def track(self, items: Iterable[tuple[str, str, str, str, datetime]]) -> int:
        """Start tracking ``(document_id, source_id, url, extraction, first_seen)``; known ids are
        left as they are. Returns how many were added."""
        added = 0
        with self._db.transaction() as db:
            for doc_id, source_id, url, extraction, first in items:
                due = due_at(first, 0, self.after)
                at = to_us(first)
                cur = db.execute(
                    f"INSERT OR IGNORE INTO recheck ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, 0, ?, ?, '')",
                    (doc_id, source_id, url, extraction, at, None if due is None else to_us(due), at),
                )
                added += cur.rowcount
        return added

    def get(self, document_id: str) -> RecheckItem | None:
        """One tracked item, or None."""
        with self._db.connection() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM recheck WHERE document_id = ?", (document_id,)).fetchone()
        return None if row is None else _item(row)

    def due(self, now: datetime, limit: int, sources: Sequence[str] | None = None) -> list[RecheckItem]:
        """Items due at ``now``, the longest overdue first, at most ``limit``; only of ``sources`` if given."""
        sql = f"SELECT {_COLUMNS} FROM recheck WHERE next_due IS NOT NULL AND next_due <= ?"
        args: list[object] = [to_us(now)]
        if sources is not None:
            if not sources:
                return []
            sql += f" AND source_id IN ({','.join('?' * len(sources))})"
            args.extend(sources)
        sql += " ORDER BY next_due, document_id LIMIT ?"
        args.append(limit)
        with self._db.connection() as db:
            return [_item(r) for r in db.execute(sql, args).fetchall()]

    def record(self, document_id: str, outcome: str, now: datetime) -> RecheckItem | None:
        """Record a check's outcome at ``now`` and move the schedule; the updated item.

        ``present`` counts the check and sets the next one from the schedule; a deletion counts
        it and ends the schedule; ``unknown`` counts nothing and retries ``after[0]`` later
        (not before the scheduled time).
        """
        item = self.get(document_id)
        if item is None:
            return None
        checks, last_present = item.checks, item.last_present or item.first_seen
        if outcome == "present":
            checks += 1
            last_present = max(last_present, now)
            due = due_at(item.first_seen, checks, self.after)
        elif outcome in DELETED:
            checks += 1
            due = None
        else:
            due = now + self.after[0]
        with self._db.transaction() as db:
            db.execute(
                "UPDATE recheck SET checks = ?, next_due = ?, last_present = ?, last_outcome = ? WHERE document_id = ?",
                (checks, None if due is None else to_us(due), to_us(last_present), outcome, document_id),
            )
        return self.get(document_id)

    def __len__(self) -> int:
        with self._db.connection() as db:
            return int(db.execute("SELECT count(*) FROM recheck").fetchone()[0])
