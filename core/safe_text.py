"""Showing scraped text safely: spreadsheet formulas and Unicode bidi controls.

Crawled text is evidence and is stored exactly as published. It is neutralised where it is
*shown*, by the helpers here, shared by every view:

* **CSV cells** (:func:`csv_cell`): a cell a spreadsheet would run as a formula (``=HYPERLINK(...)``,
  ``+``, ``-``, ``@``, or a leading tab / carriage return) is prefixed with ``'``, the OWASP advice;
  bidi controls are removed (a CSV cell has no escape for them).
* **Bidi controls** (:data:`BIDI_CONTROLS`): the embedding, override and isolate controls
  U+202A–U+202E and U+2066–U+2069 ("Trojan Source", CVE-2021-42574) reorder everything after them
  up to the end of the paragraph: ``invoice\\u202efdp.exe`` shows as ``invoiceexe.pdf``. HTML and CSV
  drop them (:func:`strip_bidi`); JSON and the terminal write them as the escape ``\\u202e``
  (:func:`escape_bidi`), which a JSON parser turns back into the same character (lossless) and a
  terminal shows as six inert characters. The marks U+200E/U+200F/U+061C are kept: they are ordinary
  in Arabic, Hebrew and Persian text and only set the direction of neutral characters next to them,
  they cannot reverse a run.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, TypeVar

__all__ = [
    "BIDI_CONTROLS",
    "InertStream",
    "csv_cell",
    "escape_bidi",
    "has_bidi_controls",
    "inert_stdio",
    "strip_bidi",
    "strip_bidi_deep",
]

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""LRE, RLE, PDF, LRO, RLO and LRI, RLI, FSI, PDI."""

_BIDI_RE = re.compile("[" + "".join(sorted(BIDI_CONTROLS)) + "]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")

T = TypeVar("T")


def has_bidi_controls(text: str) -> bool:
    """True when ``text`` holds an embedding, override or isolate control."""
    return _BIDI_RE.search(text) is not None


def strip_bidi(text: str) -> str:
    """``text`` without bidi embedding, override and isolate controls (same type back, e.g. Markup)."""
    if not _BIDI_RE.search(text):
        return text
    out = _BIDI_RE.sub("", text)
    return out if type(text) is str else type(text)(out)  # Markup stays Markup (it was safe already)


def escape_bidi(text: str) -> str:
    """``text`` with each bidi control written as ``\\uXXXX`` (valid inside a JSON string; inert in a terminal)."""
    return _BIDI_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def strip_bidi_deep(value: T) -> T:
    """:func:`strip_bidi` on every string inside dicts, lists and tuples (keys included)."""
    return _deep(value)  # type: ignore[no-any-return]


def _deep(value: Any) -> Any:
    if isinstance(value, str):
        return strip_bidi(value)
    if isinstance(value, dict):
        return {_deep(k): _deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_deep(v) for v in value)
    return value


def csv_cell(value: T) -> T | str:
    """A value safe to put in a CSV cell a spreadsheet will open.

    Strings lose bidi controls; a string that would start a formula is prefixed with ``'``
    (leading spaces do not help: spreadsheets skip them). Other values pass through.
    """
    if not isinstance(value, str):
        return value
    text = strip_bidi(value)
    if text.lstrip(" ")[:1] in _FORMULA_START:
        return "'" + text
    return text


class InertStream:
    """A text stream wrapper that writes bidi controls as ``\\uXXXX`` (:func:`escape_bidi`).

    Inside a JSON string that is the same character (``--json`` output stays exact); in a table or
    a line of text it is six visible, inert characters. Everything else is delegated.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Write ``text`` with bidi controls escaped."""
        self._stream.write(escape_bidi(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        """Write each line."""
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def inert_stdio() -> Iterator[None]:
    """Wrap ``sys.stdout`` and ``sys.stderr`` in :class:`InertStream` for the duration (the CLI does)."""
    saved = sys.stdout, sys.stderr
    if not isinstance(sys.stdout, InertStream):
        sys.stdout = InertStream(sys.stdout)
    if not isinstance(sys.stderr, InertStream):
        sys.stderr = InertStream(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
