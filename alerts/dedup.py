"""Re-alert suppression, "same evidence never twice", and digest buffers, stored in the outbox file.

Keys: ``(rule, event.key)`` for re-alert (the subject: narrative, narrative + outlet/language,
or source) and ``(rule, event.identity)`` for evidence already alerted. Sharing the outbox's
database (SQLite file or PostgreSQL state schema) lets the engine store an alert and its
suppression state in one transaction.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from alerts.outbox import Outbox
from core.events import DetectorEvent, event_from_dict, event_to_dict
from core.timefmt import from_us, to_us

__all__ = ["DedupState"]


class DedupState:
    """Suppression and digest state of the alert engine (call inside ``outbox.transaction()``)."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def seen(self, rule: str, event: DetectorEvent) -> bool:
        """True if this exact evidence already produced an alert (or digest entry) for the rule."""
        row = self.outbox.conn.execute(
            "SELECT 1 FROM seen_events WHERE rule = ? AND identity = ?", (rule, event.identity)
        ).fetchone()
        return row is not None

    def suppressed(self, rule: str, key: str, now: datetime, realert: timedelta) -> bool:
        """True if the rule alerted on this subject less than ``realert`` ago."""
        row = self.outbox.conn.execute("SELECT last_at FROM realert WHERE rule = ? AND key = ?", (rule, key)).fetchone()
        if row is None:
            return False
        last = from_us(row[0])
        return last is not None and now - last < realert

    def record(self, rule: str, event: DetectorEvent, now: datetime) -> None:
        """Remember that ``event`` was alerted now (subject time and evidence identity)."""
        c = self.outbox.conn
        c.execute(
            "INSERT INTO realert (rule, key, last_at) VALUES (?, ?, ?) "
            "ON CONFLICT (rule, key) DO UPDATE SET last_at = excluded.last_at",
            (rule, event.key, to_us(now)),
        )
        c.execute(
            "INSERT INTO seen_events (rule, identity, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (rule, event.identity, to_us(now)),
        )

    def add_to_digest(self, rule: str, event: DetectorEvent, now: datetime) -> None:
        """Buffer an event for the rule's next digest."""
        self.outbox.conn.execute(
            "INSERT INTO digest_pending (rule, identity, added_at, event) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (rule, event.identity, to_us(now), json.dumps(event_to_dict(event), ensure_ascii=False)),
        )

    def digest_due(self, rule: str, now: datetime, every: timedelta) -> list[DetectorEvent]:
        """The buffered events if a digest is due (``every`` after the last digest or the first buffered event)."""
        c = self.outbox.conn
        rows = c.execute(
            "SELECT added_at, event FROM digest_pending WHERE rule = ? ORDER BY added_at, identity", (rule,)
        ).fetchall()
        if not rows:
            return []
        state = c.execute("SELECT last_sent_at FROM digest_state WHERE rule = ?", (rule,)).fetchone()
        since = from_us(state[0]) if state else from_us(rows[0][0])
        if since is None or now - since < every:
            return []
        return [event_from_dict(json.loads(r[1])) for r in rows]

    def digest_sent(self, rule: str, now: datetime) -> None:
        """Clear the rule's buffer and remember when its digest went out."""
        c = self.outbox.conn
        c.execute("DELETE FROM digest_pending WHERE rule = ?", (rule,))
        c.execute(
            "INSERT INTO digest_state (rule, last_sent_at) VALUES (?, ?) "
            "ON CONFLICT (rule) DO UPDATE SET last_sent_at = excluded.last_sent_at",
            (rule, to_us(now)),
        )
