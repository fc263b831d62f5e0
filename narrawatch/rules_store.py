"""Analysts' alert rules (saved searches and any other detector) and the feed query rules read.

Where analyst-made rules live: a ``rules`` table in ``<data_dir>/rules.sqlite``, not the YAML.
The operator's ``alerts/*.yaml`` keep their comments and stay the operator's (read-only in the
UI); rules made from the CLI, API or web UI survive restarts in the state directory and are
merged with the YAML ones on every detector pass (:func:`effective_alerts`), so a rule saved by
``narrawatch serve`` in one process is run by ``narrawatch run`` in another on its next pass,
without a restart or reload. A stored rule cannot take a YAML rule's id.

The same file holds what the ``query`` detector needs to alert on *new* items only:

* ``new_items``: one row per document indexed (new or changed), in commit order (``seq``), written
  by a pipeline hook right after the index acknowledged the batch (:meth:`RulesStore.record_indexed`);
* ``cursors``: per rule, the last ``seq`` its pass has read. A rule made here starts at the feed's
  end when it is created; a YAML rule at its first pass. So a new saved search never alerts on the
  back catalogue, and a sequence (not a clock) means an item committed during a pass is read by
  the next one, never skipped.

:class:`RuleViews` is the store handed to :func:`alerts.rules.run_rules`: detectors other than
``query`` see the match store; a ``query`` rule gets its :class:`QueryRuleView`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from alerts.config import AlertsConfig, RuleSettings
from core.documents import SearchHit, SearchQuery, Vector, utcnow
from core.errors import ConflictError, InvalidRequestError, NotFoundError, UnknownNameError
from core.events import DETECTORS
from core.settings import format_loc
from core.sql import SqlDatabase
from core.sqlite import Store, open_database
from core.timefmt import from_us, to_us

if TYPE_CHECKING:
    from narrawatch.app import App

__all__ = [
    "FEED_KEEP",
    "RULES_FILE",
    "QueryRuleView",
    "RuleViews",
    "RulesStore",
    "StoredRule",
    "effective_alerts",
    "rule_from_dict",
    "rule_to_dict",
    "validate_rule",
]

log = logging.getLogger(__name__)

RULES_FILE = "rules.sqlite"
FEED_KEEP = timedelta(days=14)
"""Rows of the new-items feed older than this are dropped (a rule paused longer starts afresh)."""
FEED_BATCH = 10_000
"""Most new items one query rule reads in a pass (the rest wait for the next pass)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rules (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS new_items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id TEXT NOT NULL,
    indexed_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS new_items_at ON new_items (indexed_at);
CREATE TABLE IF NOT EXISTS cursors (
    rule TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL
);
"""


def _plain(value: Any) -> Any:
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def rule_to_dict(rule: RuleSettings) -> dict[str, Any]:
    """A rule as JSON-ready data that :func:`rule_from_dict` (and the YAML loader) read back."""
    return dict(_plain(rule.model_dump()))


def rule_from_dict(data: Mapping[str, Any]) -> RuleSettings:
    """Validate a rule's fields (pydantic's errors)."""
    return RuleSettings.model_validate(dict(data))


def _issues(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[str]:
    """``path: message`` per problem; a union's branches (``literal['all']``, ``tuple[...]``) are
    left out of the path, and the "'all'" branch's complaint is dropped when another branch has one."""
    found: dict[str, list[tuple[bool, str]]] = {}
    for err in exc.errors():
        raw = [p for p in err["loc"] if isinstance(p, str | int)]
        union_literal = any(isinstance(p, str) and p.startswith("literal[") for p in raw)
        loc = format_loc((*prefix, *(p for p in raw if not (isinstance(p, str) and "[" in p))))
        msg = str(err["msg"]).removeprefix("Value error, ")
        found.setdefault(loc, []).append((union_literal, msg))
    out = []
    for loc, msgs in found.items():
        keep = [m for lit, m in msgs if not lit] or [m for _, m in msgs]
        out += [f"{loc or 'rule'}: {m}" for m in dict.fromkeys(keep)]
    return out


def validate_rule(data: Mapping[str, Any], yaml_rules: AlertsConfig) -> RuleSettings:
    """A stored rule, fully checked: fields, detector and its options, channels (those of the
    YAML config). :class:`InvalidRequestError` lists every problem as ``path: message``."""
    problems: list[str] = []
    rule: RuleSettings | None = None
    try:
        rule = rule_from_dict(data)
    except ValidationError as exc:
        problems += _issues(exc)
    detector = data.get("detector")
    if isinstance(detector, str):
        try:
            kind = DETECTORS.get(detector)
        except UnknownNameError as exc:
            problems.append(f"detector: {exc}")
        else:
            try:
                kind.options.model_validate(data.get("options") or {})
            except ValidationError as exc:
                problems += _issues(exc, ("options",))
    known = {c.id for c in yaml_rules.channels}
    channels = data.get("channels") or ()
    for i, cid in enumerate(channels if isinstance(channels, list | tuple) else ()):
        if cid not in known:
            problems.append(f"channels[{i}]: unknown channel {cid!r}; known: {', '.join(sorted(known)) or '(none)'}")
    if problems or rule is None:
        raise InvalidRequestError("; ".join(dict.fromkeys(problems)) or "invalid rule")
    return rule


@dataclass(frozen=True)
class StoredRule:
    """A rule with where it comes from (``yaml`` or ``store``) and, for stored rules, who made it when."""

    rule: RuleSettings
    origin: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    created_by: str = ""
    updated_by: str = ""

    @property
    def editable(self) -> bool:
        """Only stored rules are edited from the CLI, API and web UI (YAML belongs to the operator)."""
        return self.origin == "store"


class RulesStore(Store):
    """The rules table, the new-items feed and the query rules' cursors: one SQLite file or a
    shared :class:`~core.sql.SqlDatabase` (the PostgreSQL state schema)."""

    def __init__(self, path: Path | str | SqlDatabase) -> None:
        self._db, self._owns_db = open_database(path, synchronous="FULL")
        self._db.script(_SCHEMA)

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> RulesStore:
        """The store of an install (``<data_dir>/rules.sqlite``)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(data_dir / RULES_FILE)

    # -- rules -----------------------------------------------------------------------------------

    def _row(self, r: Sequence[Any]) -> StoredRule:
        return StoredRule(
            rule=rule_from_dict(json.loads(r[1])),
            origin="store",
            created_at=from_us(r[2]),
            updated_at=from_us(r[3]),
            created_by=r[4],
            updated_by=r[5],
        )

    def rules(self) -> list[StoredRule]:
        """Every stored rule, by id (a row that no longer validates is logged and skipped)."""
        with self._db.connection() as c:
            rows = c.execute(
                "SELECT id, body, created_at, updated_at, created_by, updated_by FROM rules ORDER BY id"
            ).fetchall()
        out = []
        for r in rows:
            try:
                out.append(self._row(r))
            except ValidationError as exc:
                log.warning("rules.sqlite: rule %s no longer validates, skipped: %s", r[0], exc.errors()[0]["msg"])
        return out

    def get(self, rule_id: str) -> StoredRule | None:
        """One stored rule, or None."""
        with self._db.connection() as c:
            r = c.execute(
                "SELECT id, body, created_at, updated_at, created_by, updated_by FROM rules WHERE id = ?", (rule_id,)
            ).fetchone()
        return self._row(r) if r else None

    def create(self, rule: RuleSettings, *, by: str, now: datetime | None = None) -> StoredRule:
        """Store a new rule; its query cursor starts at the feed's end. ConflictError if the id is taken."""
        now = now or utcnow()
        body = json.dumps(rule_to_dict(rule), ensure_ascii=False)
        with self._db.transaction() as c:
            if c.execute("SELECT 1 FROM rules WHERE id = ?", (rule.id,)).fetchone():
                raise ConflictError(f"a stored rule {rule.id!r} exists already; edit it instead")
            c.execute(
                "INSERT INTO rules (id, body, created_at, updated_at, created_by, updated_by)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (rule.id, body, to_us(now), to_us(now), by, by),
            )
            c.execute(
                "INSERT INTO cursors (rule, seq, at) VALUES (?, ?, ?) ON CONFLICT (rule) DO UPDATE"
                " SET seq = excluded.seq, at = excluded.at",
                (rule.id, self._last_seq(c), to_us(now)),
            )
        log.info("rules: %s created rule %s (%s)", by, rule.id, rule.detector)
        found = self.get(rule.id)
        assert found is not None
        return found

    def update(self, rule: RuleSettings, *, by: str, now: datetime | None = None) -> StoredRule:
        """Replace a stored rule (its cursor is kept: it goes on from its last pass). NotFoundError if absent."""
        now = now or utcnow()
        body = json.dumps(rule_to_dict(rule), ensure_ascii=False)
        with self._db.transaction() as c:
            done = c.execute(
                "UPDATE rules SET body = ?, updated_at = ?, updated_by = ? WHERE id = ?",
                (body, to_us(now), by, rule.id),
            ).rowcount
        if not done:
            raise NotFoundError(f"no stored rule {rule.id!r}")
        log.info("rules: %s edited rule %s", by, rule.id)
        found = self.get(rule.id)
        assert found is not None
        return found

    def delete(self, rule_id: str, *, by: str = "") -> bool:
        """Delete a stored rule and its cursor; False if there was none."""
        with self._db.transaction() as c:
            done = c.execute("DELETE FROM rules WHERE id = ?", (rule_id,)).rowcount
            c.execute("DELETE FROM cursors WHERE rule = ?", (rule_id,))
        if done:
            log.info("rules: %s deleted rule %s", by or "someone", rule_id)
        return bool(done)

    # -- the new-items feed ----------------------------------------------------------------------

    @staticmethod
    def _last_seq(c: Any) -> int:
        row = c.execute("SELECT max(seq) FROM new_items").fetchone()
        return int(row[0] or 0)

    def last_seq(self) -> int:
        """The feed's end."""
        with self._db.connection() as c:
            return self._last_seq(c)

    def record_indexed(self, document_ids: Iterable[str], now: datetime | None = None) -> int:
        """Append documents the index just acknowledged; drops rows older than :data:`FEED_KEEP`."""
        now = now or utcnow()
        ids = list(dict.fromkeys(document_ids))
        if not ids:
            return 0
        with self._db.transaction() as c:
            c.executemany(
                "INSERT INTO new_items (document_id, indexed_at) VALUES (?, ?)", [(i, to_us(now)) for i in ids]
            )
            c.execute("DELETE FROM new_items WHERE indexed_at < ?", (to_us(now - FEED_KEEP),))
        return len(ids)

    def new_since(self, seq: int, limit: int = FEED_BATCH) -> list[tuple[int, str]]:
        """``(seq, document_id)`` after ``seq``, in commit order."""
        with self._db.connection() as c:
            rows = c.execute(
                "SELECT seq, document_id FROM new_items WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
            ).fetchall()
        return [(int(r[0]), str(r[1])) for r in rows]

    def cursor(self, rule_id: str) -> int | None:
        """The last feed position the rule's pass has read (None: never ran)."""
        with self._db.connection() as c:
            row = c.execute("SELECT seq FROM cursors WHERE rule = ?", (rule_id,)).fetchone()
        return int(row[0]) if row else None

    def set_cursors(self, positions: Mapping[str, int], now: datetime | None = None) -> None:
        """Move rules' cursors (after their pass's alerts are stored)."""
        if not positions:
            return
        at = to_us(now or utcnow())
        larger = "max" if self._db.dialect.name == "sqlite" else "greatest"
        with self._db.transaction() as c:
            c.executemany(
                "INSERT INTO cursors (rule, seq, at) VALUES (?, ?, ?) ON CONFLICT (rule) DO UPDATE"
                f" SET seq = {larger}(cursors.seq, excluded.seq), at = excluded.at",
                [(r, s, at) for r, s in positions.items()],
            )


def effective_alerts(app: App) -> AlertsConfig:
    """The YAML rules plus the stored ones (a stored rule whose id a YAML rule took is skipped)."""
    cfg = app.alerts_config
    taken = {r.id for r in cfg.rules}
    extra = []
    for s in app.rules.rules():
        if s.rule.id in taken:
            log.warning("rules: stored rule %s skipped: a YAML rule has the same id", s.rule.id)
            continue
        extra.append(s.rule)
    return dataclasses.replace(cfg, rules=(*cfg.rules, *extra)) if extra else cfg


def all_rules(app: App) -> list[StoredRule]:
    """YAML rules (read-only) then stored rules, as :class:`StoredRule` records."""
    out = [StoredRule(rule=r, origin="yaml") for r in app.alerts_config.rules]
    taken = {r.rule.id for r in out}
    out += [s for s in app.rules.rules() if s.rule.id not in taken]
    return out


class QueryRuleView:
    """What one query rule reads in one pass (see :class:`monitors.query_detector.QueryView`).

    Live (``since`` None): the documents indexed since the rule's cursor. Dry run (``since`` set):
    every stored document published since then.
    """

    def __init__(
        self, app: App, rule: RuleSettings, scope: frozenset[str] | None, *, since: datetime | None = None
    ) -> None:
        self.app = app
        self.rule = rule
        self.scope = scope
        self.since = since
        self.position: int | None = None
        """Where the cursor moves once the pass's alerts are stored (None: it stays)."""

    def new_document_ids(self) -> Sequence[str] | None:
        """Ids after the cursor (a rule never run starts at the feed's end and reads nothing)."""
        if self.since is not None:
            return None
        store = self.app.rules
        cursor = store.cursor(self.rule.id)
        if cursor is None:
            self.position = store.last_seq()
            log.info("rules: query rule %s starts watching at item %d", self.rule.id, self.position)
            return []
        rows = store.new_since(cursor)
        self.position = rows[-1][0] if rows else cursor
        return list(dict.fromkeys(doc for _, doc in rows))

    def published_since(self, now: datetime) -> datetime | None:
        """The dry run's lower bound."""
        return self.since

    def scope_sources(self) -> frozenset[str] | None:
        """The rule's source scope."""
        return self.scope

    def search(self, query: SearchQuery) -> list[SearchHit]:
        """The index's search (the query text as the search syntax reads it)."""
        return self.app.index.search(query)

    def embed_query(self, text: str) -> Vector:
        """The query in the index's embedding space."""
        return self.app.embedder.embed_query(text)

    def outlet(self, source_id: str) -> str:
        """The configured outlet label of a source (its id when unknown)."""
        try:
            return self.app.config.source(source_id).outlet_label
        except UnknownNameError:
            return source_id


class RuleViews:
    """The store handed to :func:`alerts.rules.run_rules`: the match store, plus a
    :class:`QueryRuleView` per query rule (``for_rule``); :meth:`commit` moves their cursors."""

    def __init__(self, store: Any, app: App, *, since: datetime | None = None) -> None:
        self.store = store
        self.app = app
        self.since = since
        self.views: list[QueryRuleView] = []

    def for_rule(self, rule: RuleSettings, scope: frozenset[str] | None) -> Any:
        """The view ``rule``'s detector reads."""
        if rule.detector != "query":
            return self.store
        view = QueryRuleView(self.app, rule, scope, since=self.since)
        self.views.append(view)
        return view

    def commit(self, now: datetime | None = None) -> None:
        """Move each query rule's cursor past what its pass read (call after the alerts are stored)."""
        if self.since is not None:
            return
        self.app.rules.set_cursors({v.rule.id: v.position for v in self.views if v.position is not None}, now)
        self.views.clear()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)
