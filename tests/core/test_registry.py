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
