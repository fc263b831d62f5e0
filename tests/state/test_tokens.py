"""Contract: API tokens (create, verify, revoke, roles), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core.errors import NarrawatchError, UnknownNameError
from narrawatch.http.tokens import TokenStore
from tests.state.conftest import Target


def test_tokens_contract(target: Callable[[str], Target]) -> None:
    a, b = TokenStore(target("tokens.sqlite")), TokenStore(target("tokens.sqlite"))
    with a, b:
        with pytest.raises(UnknownNameError):
            a.create("x", "root")
        t1 = a.create("bot", "read")
        with pytest.raises(NarrawatchError):
            b.create("bot", "analyst")  # one active token per name, across workers
        info = b.verify(t1)
        assert info is not None and info.active and info.role == "read"
        assert b.verify(t1 + "x") is None
        assert a.revoke("bot") and not b.revoke("bot")
        gone = a.verify(t1)
        assert gone is not None and not gone.active  # known but revoked
        t2 = b.create("bot", "analyst")  # the name is free again
        assert t2 != t1
        listed = a.list()
        assert [(t.name, t.role, t.active) for t in listed] == [("bot", "analyst", True), ("bot", "read", False)]
        assert listed[0].last_used is None and listed[1].last_used is not None
