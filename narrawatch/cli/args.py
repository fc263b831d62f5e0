"""Argument types, bounds and the config loading every ``narrawatch`` command shares."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime

from core.documents import SearchFilters
from core.logging import setup_logging
from core.settings import Config, load_config, parse_when
from narrawatch.read.params import EXPORT_MAX

__all__ = [
    "MAX_K",
    "Handler",
    "Register",
    "add_filter_args",
    "bounded_float",
    "bounded_int",
    "check_time_range",
    "load",
    "search_filters",
    "when_arg",
]

Handler = Callable[[argparse.Namespace], int]
"""A sub-command: parsed arguments in, exit code out."""
Register = Callable[[str], Callable[[Handler], Handler]]
"""``command(name)``: registers a handler under a dotted name (``alerts.list``)."""

MAX_K = EXPORT_MAX
"""Most documents one ``search`` returns (``-k``; the read model's ranked-search ceiling); the
API pages instead (``page_size`` <= 100)."""


def load(args: argparse.Namespace, *, require_sources: bool = False) -> Config:
    """The config ``--config`` names, with logging set up from the flags or the config."""
    config = load_config(args.config, require_sources=require_sources)
    setup_logging(args.log_level or config.service.log_level, args.log_format or config.service.log_format)
    return config


def bounded_int(lo: int, hi: int) -> Callable[[str], int]:
    """argparse type: an integer in ``lo..hi`` (a usage error, exit 2, otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is out of range; use {lo}..{hi}")
        return value

    return parse


def bounded_float(lo: float, hi: float, *, open_low: bool = False) -> Callable[[str], float]:
    """argparse type: a number in ``lo..hi`` (``open_low``: above ``lo``), else a usage error."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (lo < value <= hi if open_low else lo <= value <= hi):  # also false for NaN
            raise argparse.ArgumentTypeError(f"{text} is out of range; use {'>' if open_low else ''}{lo}..{hi}")
        return value

    return parse


def check_time_range(args: argparse.Namespace) -> str | None:
    """The usage error when ``--since`` is not before ``--until`` (that range holds nothing), else None."""
    since, until = getattr(args, "since", None), getattr(args, "until", None)
    if isinstance(since, datetime) and isinstance(until, datetime) and since >= until:
        return f"--since {since.isoformat()} is not before --until {until.isoformat()}: the range is empty"
    return None


def when_arg(text: str) -> datetime | None:
    """argparse type for ``--since/--until``: a clear usage error on bad input."""
    try:
        return parse_when(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_filter_args(p: argparse.ArgumentParser) -> None:
    """``--lang``, ``--source``, ``--since``, ``--until`` (search and export)."""
    p.add_argument("--lang", action="append", help="language code (repeatable)")
    p.add_argument("--source", action="append", help="source id (repeatable)")
    p.add_argument("--since", type=when_arg, help="e.g. 7d, 12h, or an ISO date")
    p.add_argument("--until", type=when_arg, help="e.g. 1d, or an ISO date (exclusive)")


def search_filters(args: argparse.Namespace) -> SearchFilters:
    """The filters ``--source``, ``--lang``, ``--since``, ``--until`` give."""
    return SearchFilters(
        sources=tuple(args.source or ()),
        languages=tuple(args.lang or ()),
        since=args.since,
        until=getattr(args, "until", None),
    )
