"""Passages: how a document's text is cut for embedding (the same for ingest and gold sets)."""

from __future__ import annotations

import re

from core.documents import Passage

__all__ = ["split_passages"]

_WORD = re.compile(r"\S+")
_PARAGRAPH = re.compile(r"[^\n]+")
# A sentence ends at . ! ? … (possibly followed by closing quotes/brackets) before whitespace.
# Matched only from the start of a run of end marks (the lookbehind), so "!!!!..." is scanned once,
# not once per mark (quadratic).
_SENTENCE_END = re.compile(r"(?<![.!?…])[.!?…]+[\"'»”’)\]]*(?=\s)")


def _word_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _WORD.finditer(text, start, end)]


def _sentence_units(text: str, start: int, end: int, max_words: int) -> list[tuple[int, int, int]]:
    """(start, end, words) of each sentence of text[start:end]; over-long sentences hard-split."""
    units: list[tuple[int, int, int]] = []
    cursor = start
    boundaries = [m.end() for m in _SENTENCE_END.finditer(text, start, end)] + [end]
    for boundary in boundaries:
        words = _word_spans(text, cursor, boundary)
        if not words:
            continue
        if len(words) <= max_words:
            units.append((words[0][0], words[-1][1], len(words)))
        else:
            for i in range(0, len(words), max_words):
                chunk = words[i : i + max_words]
                units.append((chunk[0][0], chunk[-1][1], len(chunk)))
        cursor = boundary
    return units


def split_passages(text: str, max_words: int = 120) -> tuple[Passage, ...]:
    """Split text into paragraph-aware passages of at most ``max_words`` words.

    Paragraphs (lines) are kept whole when they fit and consecutive short ones are merged up to
    the bound; a longer paragraph is split at sentence ends, and a sentence longer than the bound
    is hard-split by words. ``text[p.start : p.start + len(p.text)] == p.text`` for every passage.
    """
    if max_words < 1:
        raise ValueError("max_words must be >= 1")
    units: list[tuple[int, int, int]] = []
    for para in _PARAGRAPH.finditer(text):
        words = _word_spans(text, para.start(), para.end())
        if not words:
            continue
        if len(words) <= max_words:
            units.append((words[0][0], words[-1][1], len(words)))
        else:
            units.extend(_sentence_units(text, para.start(), para.end(), max_words))
    passages: list[Passage] = []
    current: list[tuple[int, int, int]] = []
    count = 0

    def flush() -> None:
        if current:
            start, end = current[0][0], current[-1][1]
            passages.append(Passage(index=len(passages), text=text[start:end], start=start))

    for unit in units:
        if current and count + unit[2] > max_words:
            flush()
            current, count = [], 0
        current.append(unit)
        count += unit[2]
    flush()
    return tuple(passages)
