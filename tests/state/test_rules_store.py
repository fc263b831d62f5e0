"""Contract: analysts' rules and the new-items feed, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from alerts.config import RuleSettings
from core.errors import ConflictError, NotFoundError
from narrawatch.rules_store import FEED_KEEP, RulesStore
from tests.state.conftest import Target

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _rule(rule_id: str, severity: str = "warning") -> RuleSettings:
    return RuleSettings.model_validate({"id": rule_id, "detector": "recurrence", "severity": severity})


def test_rules_crud(target: Callable[[str], Target]) -> None:
    a, b = RulesStore(target("rules.sqlite")), RulesStore(target("rules.sqlite"))
    with a, b:
        made = a.create(_rule("r1"), by="ana", now=T0)
        assert made.created_at == T0 and made.created_by == "ana" and made.editable
        with pytest.raises(ConflictError):
            b.create(_rule("r1"), by="bob", now=T0)
        edited = b.update(_rule("r1", "critical"), by="bob", now=T0 + timedelta(hours=1))
        assert edited.rule.severity == "critical" and edited.updated_by == "bob" and edited.created_by == "ana"
        assert edited.updated_at == T0 + timedelta(hours=1)
        with pytest.raises(NotFoundError):
            a.update(_rule("nope"), by="ana")
        a.create(_rule("r0"), by="ana", now=T0)
        assert [s.rule.id for s in b.rules()] == ["r0", "r1"]
        assert a.delete("r1", by="ana") and not a.delete("r1")
        assert b.get("r1") is None and b.cursor("r1") is None


def test_new_items_feed_and_cursors(target: Callable[[str], Target]) -> None:
    a, b = RulesStore(target("rules.sqlite")), RulesStore(target("rules.sqlite"))
    with a, b:
        assert a.last_seq() == 0
        assert a.record_indexed(["d1", "d2", "d1"], now=T0) == 2
        a.create(_rule("q"), by="ana", now=T0)
        assert b.cursor("q") == b.last_seq()  # a new rule starts at the feed's end
        b.record_indexed(["d3"], now=T0 + timedelta(minutes=1))
        start = b.cursor("q")
        assert start is not None
        rows = a.new_since(start)
        assert [d for _, d in rows] == ["d3"]
        assert [d for _, d in a.new_since(0)] == ["d1", "d2", "d3"]
        assert [d for _, d in a.new_since(0, limit=2)] == ["d1", "d2"]
        a.set_cursors({"q": rows[-1][0]})
        b.set_cursors({"q": start})  # a late pass never moves a cursor back
        assert a.cursor("q") == rows[-1][0]
        # Rows older than FEED_KEEP go when the feed is appended to.
        b.record_indexed(["d4"], now=T0 + FEED_KEEP + timedelta(minutes=2))
        assert [d for _, d in a.new_since(0)] == ["d4"]
