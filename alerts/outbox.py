"""The persistent outbox: alerts are written before they are sent.

SQLite (WAL) on one box, or the shared PostgreSQL state schema (``state.backend: postgresql``;
the same SQL through :mod:`core.sql`), where every worker's alerts and suppression state meet.

One ``alerts`` row per alert and one ``deliveries`` row per alert × channel, each with an
idempotency key, committed before any delivery is attempted. The :class:`Dispatcher` sends due
rows, marks a row ``sent`` only after the channel acknowledged, and retries with exponential
backoff (``next_attempt_at``) while a channel is down. A row marked ``sent`` is never selected
again. Contract: **at-least-once** delivery; a crash between a channel's acknowledgement and the
``sent`` commit re-sends that one row after restart with the same ``Idempotency-Key``, so a
webhook receiver that de-duplicates by the key sees it exactly once. SMTP, Slack and Telegram
have no idempotent submit: that window (milliseconds) can produce one duplicate message.

Leases. A dispatcher claims a row before sending it: ``lease_owner`` names the claiming process
(:func:`lease_owner`: boot id, pid namespace, pid and the process's start time) and
``lease_until`` is the claim time plus the lease. Another dispatcher may take the row when the
lease ran out **or the owner is gone** (same machine boot and pid namespace, and no process with
that pid and start time is running), so a dispatcher restarted after ``kill -9`` re-sends the
in-flight row at once, with the same idempotency key. An owner that cannot be checked (another
machine or container) is trusted until ``lease_until``. The owner token names the machine (host
name and boot id), so it identifies a worker across machines, not only a pid.

Claims. :meth:`Outbox.claim_due` reads the due rows and leases the free ones in one transaction;
on PostgreSQL the read is ``FOR UPDATE SKIP LOCKED``, so two dispatchers claiming at once get
disjoint rows (on SQLite the writer lock orders them). The :class:`Dispatcher` sends only rows it
claimed this way.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from alerts.channels.base import Channel
from alerts.config import OutboxSettings
from core.errors import AlertDeliveryError
from core.events import Alert, alert_from_dict, alert_to_dict
from core.sql import SqlConnection, SqlDatabase
from core.sqlite import Store, Where, add_columns, open_database
from core.timefmt import from_us, to_us

__all__ = [
    "AlertRow",
    "Delivery",
    "DeliveryStatus",
    "Dispatcher",
    "Outbox",
    "idempotency_key",
    "lease_owner",
    "lease_owner_alive",
]

log = logging.getLogger(__name__)

DeliveryStatus = Literal["pending", "sent", "failed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    created INTEGER NOT NULL,
    payload TEXT NOT NULL,
    acked_at INTEGER,
    acked_by TEXT NOT NULL DEFAULT '',
    ack_note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS alerts_created ON alerts (created);
CREATE INDEX IF NOT EXISTS alerts_rule_created ON alerts (rule, created);
CREATE TABLE IF NOT EXISTS deliveries (
    alert_id TEXT NOT NULL REFERENCES alerts (id),
    channel_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until INTEGER,
    lease_owner TEXT,
    last_error TEXT NOT NULL DEFAULT '',
    sent_at INTEGER,
    created INTEGER NOT NULL,
    PRIMARY KEY (alert_id, channel_id)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS realert (
    rule TEXT NOT NULL,
    key TEXT NOT NULL,
    last_at INTEGER NOT NULL,
    PRIMARY KEY (rule, key)
);
CREATE TABLE IF NOT EXISTS seen_events (
    rule TEXT NOT NULL,
    identity TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (rule, identity)
);
CREATE TABLE IF NOT EXISTS digest_pending (
    rule TEXT NOT NULL,
    identity TEXT NOT NULL,
    added_at INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (rule, identity)
);
CREATE TABLE IF NOT EXISTS digest_state (
    rule TEXT PRIMARY KEY,
    last_sent_at INTEGER NOT NULL
);
"""

_ADDED_COLUMNS = (
    ("deliveries", ("lease_owner", "TEXT")),
    ("alerts", ("ack_note", "TEXT NOT NULL DEFAULT ''")),
)
"""Columns added after the first release: outboxes created before them are migrated on open."""


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _boot_id() -> str:
    return _read("/proc/sys/kernel/random/boot_id")


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22); "" when
    there is no such process or it is a zombie (killed, not yet reaped)."""
    stat = _read(f"/proc/{pid}/stat")
    # The command name (field 2) is in parentheses and may hold spaces: split after the last ")".
    fields = stat.rpartition(")")[2].split()
    if len(fields) <= 19 or fields[0] in ("Z", "X"):
        return ""
    return fields[19]


_OWNER: tuple[int, str] | None = None


def lease_owner() -> str:
    """This process's lease-owner token ``host|boot id|pid namespace|pid|start time`` (cached per pid)."""
    global _OWNER
    pid = os.getpid()
    if _OWNER is None or _OWNER[0] != pid:
        host = socket.gethostname().replace("|", "_")
        _OWNER = (pid, f"{host}|{_boot_id()}|{_pid_namespace()}|{pid}|{_start_time(pid)}")
    return _OWNER[1]


def lease_owner_alive(owner: str) -> bool | None:
    """Is the process that wrote the token ``owner`` still running?

    False when it is gone: no process with that pid and start time in this boot, or a token of an
    earlier boot of this machine. None when this process cannot tell (no ``/proc``, another host
    or pid namespace such as another container): the lease then holds until ``lease_until``.
    """
    parts = owner.split("|")
    if len(parts) != 5 or not all(parts) or not parts[3].isdigit():
        return None
    host, boot, ns, pid, start = parts
    here = _boot_id()
    if not here or host != socket.gethostname().replace("|", "_"):
        return None
    if boot != here:
        return False
    if ns != _pid_namespace():
        return None
    return _start_time(int(pid)) == start


def idempotency_key(alert_id: str, channel_id: str) -> str:
    """The delivery's idempotency key: stable across retries and restarts."""
    return f"{alert_id}.{channel_id}"


@dataclass(frozen=True)
class Delivery:
    """One alert × channel row."""

    alert_id: str
    channel_id: str
    idempotency_key: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str
    sent_at: datetime | None
    created: datetime
    lease_owner: str | None = None
    """The process holding the row's lease (see :func:`lease_owner`), if any."""
    lease_until: datetime | None = None


@dataclass(frozen=True)
class AlertRow:
    """An alert as listed: summary fields, acknowledgement and delivery states."""

    id: str
    rule: str
    severity: str
    title: str
    created: datetime
    acked_at: datetime | None
    acked_by: str
    deliveries: dict[str, str]
    """channel id -> status."""
    ack_note: str = ""
    """The analyst's note given with the acknowledgement."""


class Outbox(Store):
    """The alert outbox and the alert engine's suppression state, in one SQLite file (WAL,
    synchronous=FULL, see :mod:`core.sqlite`) or a shared :class:`~core.sql.SqlDatabase`."""

    def __init__(self, path: Path | str | SqlDatabase, settings: OutboxSettings | None = None) -> None:
        self.settings = settings or OutboxSettings()
        self._db, self._owns_db = open_database(path, synchronous="FULL")
        if self._db.dialect.name == "sqlite":  # PostgreSQL schemas start with every column
            with self._db.connection() as conn:
                for table, column in _ADDED_COLUMNS:
                    add_columns(conn, table, (column,))  # type: ignore[arg-type]  # SQLite's connection
        self._db.script(_SCHEMA)

    @property
    def conn(self) -> SqlConnection:
        """The connection of the open transaction (for :class:`alerts.dedup.DedupState`, inside
        :meth:`transaction`)."""
        return self._db.current()

    @contextmanager
    def transaction(self) -> Iterator[SqlConnection]:
        """A write transaction (re-entrant: nested calls join the outer one)."""
        with self._db.transaction() as conn:
            yield conn

    def enqueue(self, alert: Alert, channel_ids: Sequence[str]) -> bool:
        """Store the alert and one pending delivery per channel; False if the alert was already stored."""
        now = to_us(alert.created)
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO alerts (id, rule, severity, title, created, payload) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (
                    alert.id,
                    alert.rule,
                    alert.severity,
                    alert.title,
                    now,
                    json.dumps(alert_to_dict(alert), ensure_ascii=False),
                ),
            )
            if cur.rowcount == 0:
                return False
            c.executemany(
                "INSERT INTO deliveries (alert_id, channel_id, idempotency_key, next_attempt_at, created) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(alert.id, ch, idempotency_key(alert.id, ch), now, now) for ch in dict.fromkeys(channel_ids)],
            )
        return True

    def due(self, now: datetime, limit: int = 100) -> list[Delivery]:
        """Pending deliveries whose next attempt is due and that no live lease holds, oldest first.

        A lease is live until its ``lease_until`` (wall-clock time) unless its owner process is
        gone (:func:`lease_owner_alive`); this process's own leases are live (a send in flight).
        """
        t = to_us(now)
        wall = to_us(datetime.now(UTC))
        with self._db.connection() as c:
            rows = c.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ? "
                "AND (lease_until IS NULL OR lease_until <= ? OR (lease_owner IS NOT NULL AND lease_owner != ?)) "
                "ORDER BY created, alert_id, channel_id LIMIT ?",
                (t, wall, lease_owner(), limit),
            ).fetchall()
        out = [_delivery(r) for r in rows]
        alive: dict[str, bool | None] = {}
        return [d for d in out if _lease_free(d, wall, alive)]

    def claim_due(self, now: datetime, lease: timedelta, limit: int = 100) -> list[Delivery]:
        """Lease the due rows no live lease holds (as :meth:`due` finds them) to this process, in one
        transaction, and return them with their new lease; oldest first.

        PostgreSQL reads them ``FOR UPDATE SKIP LOCKED``: a second dispatcher claiming at the same
        moment skips these rows instead of waiting for them or claiming them too.
        """
        t = to_us(now)
        wall_at = datetime.now(UTC)
        wall = to_us(wall_at)
        me = lease_owner()
        until = wall_at + lease
        with self.transaction() as c:
            rows = c.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ? "
                # a live lease of another process counts only when that process is on this host
                # (its liveness can be checked below); another host's live lease never takes a slot
                "AND (lease_until IS NULL OR lease_until <= ? "
                "OR (lease_owner IS NOT NULL AND lease_owner != ? AND lease_owner LIKE ?)) "
                f"ORDER BY created, alert_id, channel_id LIMIT ?{self._db.dialect.skip_locked}",
                (t, wall, me, me.split("|", 1)[0] + "|%", limit),
            ).fetchall()
            alive: dict[str, bool | None] = {}
            free = [d for d in map(_delivery, rows) if _lease_free(d, wall, alive)]
            if free:
                c.executemany(
                    "UPDATE deliveries SET lease_until = ?, lease_owner = ? WHERE alert_id = ? AND channel_id = ?",
                    [(to_us(until), me, d.alert_id, d.channel_id) for d in free],
                )
        return [replace(d, lease_owner=me, lease_until=from_us(to_us(until))) for d in free]

    def release_claim(self, d: Delivery) -> None:
        """Give up this process's lease on a pending row without an attempt (its channel is unavailable here)."""
        with self.transaction() as c:
            c.execute(
                "UPDATE deliveries SET lease_until = NULL, lease_owner = NULL "
                "WHERE alert_id = ? AND channel_id = ? AND status = 'pending' AND lease_owner = ?",
                (d.alert_id, d.channel_id, lease_owner()),
            )

    def claim(self, d: Delivery, now: datetime, lease: timedelta) -> bool:
        """Take a lease on a pending row so a second dispatcher on the same file skips it.

        The lease names this process and runs ``lease`` from now on the wall clock (``now`` is the
        pass's scheduling time, which tests move); a compare-and-set on the lease ``d`` was read
        with, so of two dispatchers that both found a dead owner's row only one takes it.
        """
        wall = datetime.now(UTC)
        with self.transaction() as c:
            cur = c.execute(
                "UPDATE deliveries SET lease_until = ?, lease_owner = ? WHERE alert_id = ? AND channel_id = ? "
                "AND status = 'pending' AND lease_owner IS NOT DISTINCT FROM ? AND lease_until IS NOT DISTINCT FROM ?",
                (
                    to_us(wall + lease),
                    lease_owner(),
                    d.alert_id,
                    d.channel_id,
                    d.lease_owner,
                    None if d.lease_until is None else to_us(d.lease_until),
                ),
            )
            return cur.rowcount == 1

    def mark_sent(self, d: Delivery, now: datetime) -> None:
        """Record the channel's acknowledgement (commits before returning)."""
        with self.transaction() as c:
            c.execute(
                "UPDATE deliveries SET status = 'sent', sent_at = ?, attempts = attempts + 1, lease_until = NULL, "
                "lease_owner = NULL, "
                "last_error = '' WHERE alert_id = ? AND channel_id = ? AND status = 'pending'",
                (to_us(now), d.alert_id, d.channel_id),
            )

    def mark_failed(self, d: Delivery, now: datetime, error: str) -> tuple[DeliveryStatus, datetime]:
        """Count a failed attempt; schedule the next with exponential backoff (or give up after max_attempts).

        Returns the new status and the next attempt time.
        """
        s = self.settings
        attempts = d.attempts + 1
        delay = min(s.backoff_base * (2 ** min(attempts - 1, 30)), s.backoff_max)
        status: DeliveryStatus = "failed" if attempts >= s.max_attempts else "pending"
        with self.transaction() as c:
            c.execute(
                "UPDATE deliveries SET attempts = ?, next_attempt_at = ?, last_error = ?, status = ?, "
                "lease_until = NULL, lease_owner = NULL WHERE alert_id = ? AND channel_id = ? AND status = 'pending'",
                (attempts, to_us(now + delay), error[:500], status, d.alert_id, d.channel_id),
            )
        return status, now + delay

    def postpone(self, d: Delivery, until: datetime) -> None:
        """Move a due row's next attempt without counting an attempt (its channel just failed)."""
        with self.transaction() as c:
            c.execute(
                "UPDATE deliveries SET next_attempt_at = CASE WHEN next_attempt_at > ? THEN next_attempt_at ELSE ? END,"
                " lease_until = NULL, lease_owner = NULL WHERE alert_id = ? AND channel_id = ? AND status = 'pending'",
                (to_us(until), to_us(until), d.alert_id, d.channel_id),
            )

    def next_attempt_of(self, channel_id: str) -> datetime | None:
        """The earliest scheduled attempt of a channel's pending rows."""
        with self._db.connection() as c:
            row = c.execute(
                "SELECT min(next_attempt_at) FROM deliveries WHERE channel_id = ? AND status = 'pending'", (channel_id,)
            ).fetchone()
        return from_us(row[0]) if row and row[0] is not None else None

    def alert(self, alert_id: str) -> Alert | None:
        """The stored alert (with its events), or None."""
        with self._db.connection() as c:
            row = c.execute("SELECT payload FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return alert_from_dict(json.loads(row[0])) if row else None

    def deliveries(self, alert_id: str | None = None, status: DeliveryStatus | None = None) -> list[Delivery]:
        """Delivery rows, optionally of one alert and/or one status."""
        where = Where().equal("alert_id", alert_id).equal("status", status)
        sql, args = where.select(f"SELECT {_DELIVERY_COLUMNS} FROM deliveries", "created, alert_id, channel_id")
        with self._db.connection() as c:
            return [_delivery(r) for r in c.execute(sql, args)]

    def list_alerts(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        rule: str | None = None,
        severity: str | None = None,
        unacked: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> list[AlertRow]:
        """Alerts created in ``[since, until)``, newest first (ties by id), one page: every filter,
        the order, ``limit`` and ``offset`` are applied in SQL, and only the page's deliveries are read."""
        where = Where().between("created", since, until).equal("rule", rule).equal("severity", severity)
        if unacked:
            where.add("acked_at IS NULL")
        sql, args = where.select(
            f"SELECT {_ALERT_COLUMNS} FROM alerts", "created DESC, id", limit=max(0, limit), offset=max(0, offset)
        )
        with self._db.connection() as c:
            rows = c.execute(sql, args).fetchall()
            states = _delivery_states(c, [r[0] for r in rows])
        return [_alert_row(r, states.get(r[0], {})) for r in rows]

    def alert_row(self, alert_id: str) -> AlertRow | None:
        """One alert's summary, acknowledgement and delivery states (None if unknown)."""
        with self._db.connection() as c:
            row = c.execute(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            states = _delivery_states(c, [alert_id]) if row else {}
        return None if row is None else _alert_row(row, states.get(alert_id, {}))

    def ack(self, alert_id: str, now: datetime, by: str = "", note: str = "") -> bool:
        """Mark an alert acknowledged by an analyst, with an optional note (who, when and the note are
        stored); False if unknown or already acknowledged (the first acknowledgement stands)."""
        with self.transaction() as c:
            cur = c.execute(
                "UPDATE alerts SET acked_at = ?, acked_by = ?, ack_note = ? WHERE id = ? AND acked_at IS NULL",
                (to_us(now), by, note, alert_id),
            )
            return cur.rowcount == 1

    def counts(self) -> dict[str, int]:
        """Delivery rows per status plus the number of alerts."""
        with self._db.connection() as c:
            out = {st: n for st, n in c.execute("SELECT status, count(*) FROM deliveries GROUP BY status")}
            out["alerts"] = int(c.execute("SELECT count(*) FROM alerts").fetchone()[0])
        return out


_ALERT_COLUMNS = "id, rule, severity, title, created, acked_at, acked_by, ack_note"


def _delivery_states(c: SqlConnection, alert_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """alert id -> channel id -> delivery status, for ``alert_ids`` (read in chunks of 500)."""
    states: dict[str, dict[str, str]] = {}
    for i in range(0, len(alert_ids), 500):
        chunk = list(alert_ids[i : i + 500])
        sql = f"SELECT alert_id, channel_id, status FROM deliveries WHERE alert_id IN ({', '.join('?' * len(chunk))})"
        for aid, ch, st in c.execute(sql, chunk):
            states.setdefault(aid, {})[ch] = st
    return states


def _alert_row(r: Sequence[Any], deliveries: dict[str, str]) -> AlertRow:
    return AlertRow(
        id=r[0],
        rule=r[1],
        severity=r[2],
        title=r[3],
        created=from_us(r[4]),
        acked_at=from_us(r[5]),
        acked_by=r[6],
        deliveries=deliveries,
        ack_note=r[7],
    )


_DELIVERY_COLUMNS = (
    "alert_id, channel_id, idempotency_key, status, attempts, next_attempt_at, last_error, sent_at, created, "
    "lease_owner, lease_until"
)


def _delivery(r: Sequence[Any]) -> Delivery:
    return Delivery(
        alert_id=r[0],
        channel_id=r[1],
        idempotency_key=r[2],
        status=r[3],
        attempts=int(r[4]),
        next_attempt_at=from_us(r[5]),
        last_error=r[6],
        sent_at=from_us(r[7]),
        created=from_us(r[8]),
        lease_owner=r[9],
        lease_until=from_us(r[10]),
    )


def _lease_free(d: Delivery, wall: int, alive: dict[str, bool | None]) -> bool:
    """May another dispatcher take ``d``: no lease, an expired one, or one whose owner is gone."""
    if d.lease_until is None or to_us(d.lease_until) <= wall:
        return True
    if d.lease_owner is None or d.lease_owner == lease_owner():
        return False
    if d.lease_owner not in alive:
        alive[d.lease_owner] = lease_owner_alive(d.lease_owner)
        if alive[d.lease_owner] is False:
            log.info("outbox: lease of %s -> %s belongs to a process that is gone; taking it", d.alert_id, d.channel_id)
    return alive[d.lease_owner] is False


class Dispatcher:
    """Sends due outbox rows through their channels; run it on a schedule (one at a time per outbox:
    see :mod:`core.locks`; two at once stay correct, each sends only the rows it claimed)."""

    def __init__(
        self, outbox: Outbox, channels: Mapping[str, Channel], *, lease: timedelta = timedelta(minutes=5)
    ) -> None:
        self.outbox = outbox
        self.channels = dict(channels)
        self.lease = lease
        self._warned: set[str] = set()

    def deliver_due(self, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
        """Attempt every due row once; returns counts ``sent``, ``retry``, ``failed``, ``deferred``, ``no_channel``.

        After a failure the channel's other due rows are deferred to its next attempt (a down
        endpoint is not hammered); rows of an unavailable (disabled) channel stay pending.
        """
        now = now or datetime.now(UTC)
        counts = {"sent": 0, "retry": 0, "failed": 0, "deferred": 0, "no_channel": 0}
        down: dict[str, datetime] = {}
        for d in self.outbox.claim_due(now, self.lease, limit):
            channel = self.channels.get(d.channel_id)
            if channel is None:
                self.outbox.release_claim(d)
                counts["no_channel"] += 1
                if d.channel_id not in self._warned:
                    self._warned.add(d.channel_id)
                    log.warning("outbox: channel %s is not available; its deliveries stay pending", d.channel_id)
                continue
            if d.channel_id in down:
                self.outbox.postpone(d, down[d.channel_id])
                counts["deferred"] += 1
                continue
            alert = self.outbox.alert(d.alert_id)
            if alert is None:  # pragma: no cover - foreign key keeps this from happening
                continue
            try:
                channel.send(alert, d.idempotency_key)
            except Exception as exc:
                if not isinstance(exc, AlertDeliveryError):
                    log.exception("outbox: channel %s raised unexpectedly", d.channel_id)
                status, next_at = self.outbox.mark_failed(d, now, str(exc))
                counts["failed" if status == "failed" else "retry"] += 1
                log.warning("outbox: %s -> %s failed (attempt %d): %s", d.alert_id, d.channel_id, d.attempts + 1, exc)
                down[d.channel_id] = next_at
                continue
            self.outbox.mark_sent(d, now)
            counts["sent"] += 1
            log.info("outbox: sent %s -> %s", d.alert_id, d.channel_id)
        return counts
