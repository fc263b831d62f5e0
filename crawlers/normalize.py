"""Normalisation: canonical URLs, passages, near-duplicate fingerprints, content hashes, Documents.

Everything here is a pure function of its arguments (no I/O, no clock).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
from courlan.clean import TRACKERS_RE, normalize_url, scrub_url
from datasketch import MinHash

from core.documents import Document, ExtractionMethod, clamp_storable, document_id_for_url
from core.errors import UnsupportedURL
from core.passages import split_passages
from crawlers.langid import detect_language

__all__ = [
    "canonical_url",
    "clean_text",
    "content_hash",
    "fingerprint",
    "fingerprint_similarity",
    "make_document",
    "split_passages",
]

# courlan's tracker pattern covers utm_*, fbclid, gclid, yclid, mc_*, ... ; these are common
# in our region's outlets and not in it.
_EXTRA_TRACKERS = frozenset({"_openstat", "ncid", "ocid", "cmpid", "spm", "wt.mc_id", "from", "rss", "ito"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


# A scheme as RFC 3986 spells it; "example.com:8080/x" is a host and a port, not a scheme.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_PORT_AFTER_HOST = re.compile(r"^\d+(?:[/?#]|$)")
# Browsers drop tabs and newlines anywhere in a URL ("java\tscript:") and C0 controls/spaces at its ends.
_URL_TAB_NEWLINE = re.compile(r"[\t\n\r]")
_URL_EDGE = "".join(chr(c) for c in range(0x21))


def canonical_url(url: str) -> str:
    """The canonical form of a URL, used for ids and deduplication.

    Lower-cases scheme and host, drops the fragment, default ports and tracking parameters
    (courlan's list: ``utm_*``, ``fbclid``, ``gclid``, ``yclid``, ... plus a few more), sorts the
    remaining query parameters and keeps the path's case. A URL without a scheme gets ``https``.
    An empty string stays empty.

    Raises :class:`~core.errors.UnsupportedURL` for any scheme but ``http``/``https``
    (``javascript:``, ``data:``, ``vbscript:``, ``mailto:``, ``ftp:``, ``file:`` ...) and for a
    URL without a host: such links name no document (they used to collapse onto one id).
    """
    raw = _URL_TAB_NEWLINE.sub("", url).strip(_URL_EDGE)
    if not raw:
        return ""
    scheme_match = _SCHEME.match(raw)
    if raw.startswith("//"):
        raw = "https:" + raw
    elif scheme_match and not _PORT_AFTER_HOST.match(raw[scheme_match.end() :]):
        scheme = scheme_match.group(1).lower()
        if scheme not in _DEFAULT_PORTS:
            raise UnsupportedURL(url, f"not an http(s) link ({scheme}:)")
        raw = scheme + "://" + raw[scheme_match.end() :].lstrip("/\\")
    else:
        raw = "https://" + raw
    try:
        normalised = normalize_url(scrub_url(raw), strict=False)
    except (ValueError, AttributeError):
        normalised = raw
    parts = urlsplit(normalised)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    netloc = f"[{host}]" if ":" in host else host  # an IPv6 literal keeps its brackets
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and _DEFAULT_PORTS.get(scheme) != port:
        netloc = f"{netloc}:{port}"
    query_pairs = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key.lower() not in _EXTRA_TRACKERS and not TRACKERS_RE.search(key.lower())
    ]
    query = urlencode(sorted(query_pairs), doseq=False)
    path = parts.path or "/"
    if not host or scheme not in _DEFAULT_PORTS:
        raise UnsupportedURL(url, "no host" if not host else f"not an http(s) link ({scheme}:)")
    return urlunsplit((scheme, netloc, path, query, ""))


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u00ad]")
_INLINE_SPACE = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """NFC, control and zero-width characters removed, spaces collapsed, at most one blank line."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u2028", "\n").replace("\u2029", "\n\n")
    text = _CONTROL.sub("", text)
    lines = [_INLINE_SPACE.sub(" ", line).strip() for line in text.split("\n")]
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


# A bare host is matched only from the start of a run of host characters (the lookbehind): with
# ``\b`` every dot in "a.a.a..." was a new start and the scan quadratic in the token's length.
_URL = re.compile(r"(?:https?://|www\.)\S+|(?<![\w.-])[\w.-]+\.(?:ru|ua|com|org|net|by|kz|me)/\S*", re.IGNORECASE)
_NON_WORD = re.compile(r"[\W_]+")
_SHINGLE = 3
_SEED = 1


def _fingerprint_tokens(text: str) -> list[str]:
    text = _URL.sub(" ", text.lower().replace("ё", "е"))
    return _NON_WORD.sub(" ", text).split()


def fingerprint(text: str, num_perm: int = 64) -> tuple[int, ...]:
    """MinHash signature (datasketch) over word 3-gram shingles of the normalised text.

    Normalisation: lower case, ``ё`` -> ``е``, URLs and punctuation removed. Texts shorter than
    three words use the whole text as one shingle; empty text gives ``()``.
    """
    tokens = _fingerprint_tokens(text)
    if not tokens:
        return ()
    if len(tokens) < _SHINGLE:
        shingles = {" ".join(tokens)}
    else:
        shingles = {" ".join(tokens[i : i + _SHINGLE]) for i in range(len(tokens) - _SHINGLE + 1)}
    minhash = MinHash(num_perm=num_perm, seed=_SEED)
    minhash.update_batch([s.encode("utf-8") for s in sorted(shingles)])
    return tuple(int(v) for v in minhash.hashvalues)


def fingerprint_similarity(a: tuple[int, ...] | list[int], b: tuple[int, ...] | list[int]) -> float:
    """Estimated Jaccard similarity of two :func:`fingerprint` signatures; 0.0 if either is empty.

    Raises ValueError when both are non-empty but of different lengths (other ``num_perm``).
    """
    if not a or not b:
        return 0.0
    if len(a) != len(b):
        raise ValueError(f"fingerprints of different lengths: {len(a)} != {len(b)}")
    left = np.asarray(a, dtype=np.uint64)
    right = np.asarray(b, dtype=np.uint64)
    return float(np.count_nonzero(left == right)) / float(len(left))


def content_hash(title: str, text: str) -> str:
    """sha256 hex of the whitespace-normalised title + ``"\\n"`` + whitespace-normalised text."""
    normalised = " ".join(title.split()) + "\n" + " ".join(text.split())
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def make_document(
    *,
    source_id: str,
    kind: str,
    url: str,
    title: str,
    text: str,
    published: datetime | None,
    fetched: datetime,
    language_hint: str | None = None,
    author: str = "",
    extraction: ExtractionMethod = "page",
    outlet: str = "",
    links: Iterable[str] = (),
    forwarded_from: str = "",
    views: int | None = None,
    media: Iterable[str] = (),
    doc_id: str | None = None,
    passage_max_words: int = 120,
    extra: Mapping[str, Any] | None = None,
) -> Document:
    """Build a normalised :class:`Document` from what a crawler found.

    The URL is canonicalised (:func:`canonical_url`) and gives the id unless ``doc_id`` is passed
    (Telegram posts pass ``document_id_for_telegram``); naive datetimes are taken as UTC and all
    are converted to UTC; a missing ``published`` becomes ``fetched``; title and text are
    cleaned (:func:`clean_text`); the language is detected on title + text with
    ``language_hint`` as the fallback; ``outlet`` defaults to the host without ``www.``.
    The passages cover the text only (a document with empty text has no passages).
    Values no backend can store are replaced (:func:`core.documents.clamp_storable` without a
    clock: ``published`` before 1970 becomes ``fetched``, ``views`` outside 0..2^63-1 None).

    Raises :class:`~core.errors.UnsupportedURL` when the URL is not http(s), or empty without
    ``doc_id`` (the caller drops the item with ``reason="unsupported_url"``).
    """
    canonical = canonical_url(url)
    if not canonical and not doc_id:
        raise UnsupportedURL(url, "no URL")
    fetched_utc = _utc(fetched)
    published_utc = _utc(published) if published is not None else fetched_utc
    clean_title = " ".join(clean_text(title).split())
    clean_body = clean_text(text)
    if not outlet:
        host = urlsplit(canonical).hostname or ""
        outlet = host.removeprefix("www.")
    language = detect_language(f"{clean_title}\n{clean_body}".strip(), language_hint)
    doc = Document(
        id=doc_id or document_id_for_url(canonical),
        source_id=source_id,
        kind=kind,
        url=canonical,
        title=clean_title,
        text=clean_body,
        language=language,
        published=published_utc,
        fetched=fetched_utc,
        passages=split_passages(clean_body, passage_max_words),
        content_hash=content_hash(clean_title, clean_body),
        fingerprint=fingerprint(f"{clean_title}\n{clean_body}"),
        author=" ".join(author.split()),
        extraction=extraction,
        outlet=outlet,
        links=tuple(dict.fromkeys(link for link in links if link)),
        forwarded_from=forwarded_from,
        views=views,
        media=tuple(media),
        extra=dict(extra or {}),
    )
    return clamp_storable(doc)
