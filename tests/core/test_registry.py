from __future__ import annotations

import pytest

from core.errors import UnknownNameError
from core.registry import Registry


def test_unknown_name_lists_known() -> None:
    reg: Registry[int] = Registry("detector")
    reg.add("spike", 1)
    reg.register("recurrence")(2)
    assert reg.get("spike") == 1 and "recurrence" in reg and reg.names() == ["recurrence", "spike"]
    with pytest.raises(UnknownNameError) as exc:
        reg.get("burst")
    assert str(exc.value) == "unknown detector 'burst'; known: recurrence, spike"


def test_duplicate_registration_fails() -> None:
    reg: Registry[int] = Registry("channel")
    reg.add("email", 1)
    reg.add("email", 1)  # same object again is harmless (re-import)
    with pytest.raises(ValueError, match="already registered"):
        reg.add("email", 2)


def test_lazy_entry_loads_on_first_lookup_and_registers_idempotently() -> None:
    loads: list[str] = []

    def load() -> int:
        loads.append("elasticsearch")
        return 7

    reg: Registry[int] = Registry("index backend")
    reg.add("embedded", 1)
    reg.add_lazy("elasticsearch", load)
    assert reg.names() == ["elasticsearch", "embedded"] and "elasticsearch" in reg and loads == []
    assert reg.get("elasticsearch") == 7 and reg.get("elasticsearch") == 7 and loads == ["elasticsearch"]
    reg.add_lazy("elasticsearch", load)  # register_builtins again: a no-op
    reg.add("elasticsearch", 7)
    with pytest.raises(ValueError, match="already registered"):
        reg.add_lazy("elasticsearch", lambda: 8)
    with pytest.raises(ValueError, match="already registered"):
        reg.add_lazy("embedded", load)
    with pytest.raises(UnknownNameError, match="known: elasticsearch, embedded"):
        reg.get("pgvector")
