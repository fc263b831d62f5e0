"""Text helpers the platform parsers share (YouTube descriptions, VK posts, RuTube descriptions)."""

from __future__ import annotations

import re

__all__ = ["text_links"]

_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"')\]]+")


def text_links(text: str) -> tuple[str, ...]:
    """The http(s) URLs written in plain text, in order, without duplicates (trailing punctuation dropped)."""
    return tuple(dict.fromkeys(m.group(0).rstrip(".,;:!?") for m in _URL_IN_TEXT.finditer(text)))
