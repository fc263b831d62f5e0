"""The sightings store: which sources carried which document, in ``<data_dir>/sightings.sqlite``.

SQLite (WAL, synchronous=FULL), one row per (document, source): the first time the service saw
that source carry the document, the last time, and what the source claimed (title, publication
time). The pipeline writes a document's sightings in the same step that indexes it, before its
item is marked seen, so a crash re-sends the item instead of losing the sighting. Rows are only
ever added or touched (``last_seen``); the record in the index is never changed by them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from core.sightings import Sighting
from core.sqlite import Database, Store
from core.timefmt import iso_utc

__all__ = ["SIGHTINGS_FILE", "NoSightings", "SightingStore", "open_sightings", "sightings_path"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sightings (
    document_id TEXT NOT NULL,
    source_id TEXT NOT NULL,
    outlet TEXT NOT NULL,
    url TEXT NOT NULL,
    title TEXT NOT NULL,
    published TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (document_id, source_id)
);
CREATE INDEX IF NOT EXISTS sightings_by_source ON sightings (source_id, first_seen);
"""
SIGHTINGS_FILE = "sightings.sqlite"
_TITLE_MAX = 500
_BATCH = 500


def sightings_path(data_dir: Path) -> Path:
    """Where the sightings of an install live."""
    return data_dir / SIGHTINGS_FILE


class SightingStore(Store):
    """Thread-safe sightings in one SQLite file (created 0600, see :mod:`core.sqlite`)."""

    def __init__(self, path: Path) -> None:
        self._db = Database(path, synchronous="FULL")
        self._db.script(_SCHEMA)

    def record(self, sightings: Iterable[Sighting]) -> None:
        """Add sightings; for a (document, source) pair already known only ``last_seen`` moves."""
        rows = [
            (
                s.document_id,
                s.source_id,
                s.outlet,
                s.url,
                s.title[:_TITLE_MAX],
                iso_utc(s.published),
                iso_utc(s.first_seen),
                iso_utc(s.last_seen),
            )
            for s in sightings
        ]
        if not rows:
            return
        with self._db.transaction() as db:
            db.executemany(
                "INSERT INTO sightings (document_id, source_id, outlet, url, title, published, first_seen,"
                " last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (document_id, source_id)"
                " DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)",
                rows,
            )

    def for_documents(self, document_ids: Sequence[str]) -> dict[str, list[Sighting]]:
        """Sightings per document id, earliest first; ids without sightings are absent."""
        out: dict[str, list[Sighting]] = {}
        ids = list(dict.fromkeys(document_ids))
        for start in range(0, len(ids), _BATCH):
            part = ids[start : start + _BATCH]
            marks = ",".join("?" * len(part))
            with self._db.connection() as db:
                rows = db.execute(
                    "SELECT document_id, source_id, outlet, url, title, published, first_seen, last_seen"
                    f" FROM sightings WHERE document_id IN ({marks}) ORDER BY first_seen, source_id",
                    part,
                ).fetchall()
            for r in rows:
                out.setdefault(r[0], []).append(
                    Sighting(
                        document_id=r[0],
                        source_id=r[1],
                        outlet=r[2],
                        url=r[3],
                        title=r[4],
                        published=datetime.fromisoformat(r[5]),
                        first_seen=datetime.fromisoformat(r[6]),
                        last_seen=datetime.fromisoformat(r[7]),
                    )
                )
        return out


class NoSightings:
    """The lookup of an install that never recorded a sighting (nothing is created on disk)."""

    def for_documents(self, document_ids: Sequence[str]) -> Mapping[str, Sequence[Sighting]]:
        """Always empty."""
        return {}

    def close(self) -> None:
        """Nothing to close."""


def open_sightings(path: Path, *, read_only: bool = False) -> SightingStore | NoSightings:
    """The store at ``path``; read-only callers get :class:`NoSightings` when it does not exist yet."""
    if read_only and not path.exists():
        return NoSightings()
    return SightingStore(path)
