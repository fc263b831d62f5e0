"""Language identification for news text: ISO 639-1 codes or ``und``.

Chosen by measurement (bench/langid_eval.py, docs/langid.md): lingua, restricted to the
languages this service meets, plus rules for what lingua cannot do:

* Georgian and Armenian are identified by their scripts;
* Cyrillic Central Asian languages by their distinctive letters (Kazakh ә ұ қ ғ һ і, Kyrgyz
  ң ө ү, Tajik ҷ ӣ ӯ, Uzbek ў with қ ғ ҳ) when those make up a noticeable share of the letters;
  lingua has no Kyrgyz, Tajik or Uzbek model;
* Uzbek in Latin script by its ``o‘``/``g‘`` digraphs.

Every step is linear in the length of the text, whatever it holds (a megabyte without a space
included): links and e-mail addresses are removed token by token, never by a pattern run over
the whole text, and only the first :data:`MAX_DETECT_CHARS` characters of what remains are read, at most
:data:`_MAX_TOKEN_CHARS` of any one token (so one huge token cannot outvote the prose around it).

The detector is built once, lazily and thread-safely (lingua's models are large).
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from typing import Any

__all__ = ["MAX_DETECT_CHARS", "MIN_LETTERS", "SUPPORTED_LANGUAGES", "detect_language", "normalize_language_code"]

logger = logging.getLogger(__name__)

MIN_LETTERS = 6
"""Texts with fewer letters than this are too short to judge: the hint (or ``und``) is returned."""
MAX_DETECT_CHARS = 10_000
"""Only this many characters of a text (links removed) are looked at: far more than identification
needs, and a bound on its cost for hostile or huge texts."""
_MAX_TOKEN_CHARS = 100
"""Longer tokens (no natural word is; a paragraph of Chinese may be) count by their first characters."""
_UNSURE = 0.5
"""Below this lingua confidence a given hint wins."""
_CENTRAL_SHARE = 0.015
"""Distinctive Central Asian letters must be at least this share of the Cyrillic letters."""

_LINGUA_CODES = [
    "ru",
    "uk",
    "be",
    "bg",
    "sr",
    "mk",
    "kk",
    "mn",
    "en",
    "de",
    "fr",
    "es",
    "it",
    "pt",
    "nl",
    "pl",
    "cs",
    "sk",
    "sl",
    "hr",
    "bs",
    "lt",
    "lv",
    "et",
    "fi",
    "sv",
    "da",
    "nb",
    "ro",
    "hu",
    "tr",
    "az",
    "ka",
    "hy",
    "he",
    "ar",
    "fa",
    "ur",
    "hi",
    "zh",
    "ja",
    "ko",
    "el",
    "sq",
]
SUPPORTED_LANGUAGES = frozenset({*_LINGUA_CODES, "ky", "tg", "uz"})
"""Every code :func:`detect_language` can return besides ``und``."""

_ALIASES = {"ua": "uk", "iw": "he", "no": "nb", "nn": "nb"}

_KK_ONLY = frozenset("әұһ")
_KK_ALSO = frozenset("қғі")
_KY = frozenset("ңөү")
_TG_ONLY = frozenset("ҷӣӯ")
_UZ_CYR = frozenset("ў")
_SHARED_TG_UZ = frozenset("қғҳ")
_TG_WORDS = frozenset(["дар", "ва", "аз", "ки", "ба", "бо", "шуд", "кард", "мешавад", "карда", "буд", "намуд", "гуфт"])
_UZ_WORDS = frozenset(["билан", "учун", "бу", "ҳам", "бўйича", "эди", "қилди", "бўлди", "ва", "деди"])
_UZ_SUFFIXES = ("лар", "ларни", "ни", "нинг", "да", "дан", "ди", "ган", "моқда", "ида", "ини", "иш", "ги")
_TG_SUFFIXES = ("ро", "ҳо", "ҳои", "анд", "ед", "ам", "аст", "ӣ")
_UZ_LATIN = re.compile(r"[oOgG][‘’'ʻʼ`]")
_UZ_LATIN_WORDS = frozenset(["va", "bilan", "uchun", "bu", "ham", "yil", "qildi", "etdi", "edi", "dedi", "bo‘yicha"])
_UZ_LATIN_SUFFIXES = ("lar", "larni", "ning", "dan", "gan", "lik", "dagi", "moqda", "ni", "ga", "di", "da", "ish")
_TURKIC_LATIN = re.compile(r"[əƏıİöÖüÜçÇşŞğĞ]")
# Both searched within one token, never across the text: ``\S+@\S+\.\w+`` over the whole text
# backtracks quadratically in the length of a token without spaces (9 s at 100k characters).
_LINK_START = re.compile(r"https?://|www\.", re.IGNORECASE)
_DOT_WORD = re.compile(r"\.\w")
_WORD = re.compile(r"\w+")

_lock = threading.Lock()
_detector: Any = None


def normalize_language_code(code: str | None) -> str | None:
    """``"ru-RU"`` -> ``"ru"``, ``"ua"`` -> ``"uk"``; None for empty or non-two-letter codes."""
    if not code:
        return None
    base = re.split(r"[-_]", code.strip().lower(), maxsplit=1)[0]
    base = _ALIASES.get(base, base)
    return base if len(base) == 2 and base.isalpha() else None


def _strip_link(token: str) -> str:
    """The token without a URL (from ``http(s)://`` or ``www.`` on) or e-mail address in it."""
    link = _LINK_START.search(token)
    if link:
        return token[: link.start()]
    at = token.find("@", 1)
    if at != -1 and _DOT_WORD.search(token, at + 2):
        return ""
    return token


def _sample(text: str) -> str:
    """Up to :data:`MAX_DETECT_CHARS` characters of the text's tokens, links and addresses removed,
    each token cut to :data:`_MAX_TOKEN_CHARS`."""
    kept: list[str] = []
    size = 0
    for token in text.split():
        token = _strip_link(token)
        if not token:
            continue
        kept.append(token[: min(_MAX_TOKEN_CHARS, MAX_DETECT_CHARS - size)])
        size += len(kept[-1]) + 1
        if size >= MAX_DETECT_CHARS:
            break
    return " ".join(kept)


def _get_detector() -> Any:
    global _detector
    if _detector is None:
        with _lock:
            if _detector is None:
                from lingua import IsoCode639_1, LanguageDetectorBuilder

                codes = [getattr(IsoCode639_1, c.upper()) for c in _LINGUA_CODES]
                _detector = LanguageDetectorBuilder.from_iso_codes_639_1(*codes).build()
                logger.debug("built lingua detector for %d languages", len(codes))
    return _detector


def _script_counts(text: str) -> dict[str, int]:
    counts = {"latin": 0, "cyrillic": 0, "georgian": 0, "armenian": 0, "other": 0}
    for ch in text:
        if not ch.isalpha():
            continue
        cp = ord(ch)
        if cp < 0x250:
            counts["latin"] += 1
        elif 0x400 <= cp <= 0x52F:
            counts["cyrillic"] += 1
        elif 0x10A0 <= cp <= 0x10FF or 0x1C90 <= cp <= 0x1CBF or 0x2D00 <= cp <= 0x2D2F:
            counts["georgian"] += 1
        elif 0x530 <= cp <= 0x58F or 0xFB13 <= cp <= 0xFB17:
            counts["armenian"] += 1
        else:
            counts["other"] += 1
    return counts


def _central_asian_cyrillic(lower: str, cyrillic_letters: int) -> str | None:
    """Kazakh, Kyrgyz, Tajik or Uzbek from distinctive letters, or None."""
    distinctive = _KK_ONLY | (_KK_ALSO - {"і"}) | _KY | _TG_ONLY | _UZ_CYR | _SHARED_TG_UZ
    found = sum(1 for ch in lower if ch in distinctive)
    if found == 0 or found < _CENTRAL_SHARE * cyrillic_letters:
        return None
    present = set(lower)
    if present & _TG_ONLY:
        return "tg"
    if present & _UZ_CYR and present & _SHARED_TG_UZ:
        return "uz"
    if present & _KK_ONLY or (present & {"қ", "ғ"} and "і" in present):
        return "kk"
    if present & _KY and not present & (_KK_ONLY | _KK_ALSO):
        return "ky"
    if present & _SHARED_TG_UZ:
        return _uzbek_or_tajik(lower)
    return None


def _uzbek_or_tajik(lower: str) -> str:
    """Cyrillic text with қ/ғ/ҳ but no letter unique to either language: vote by words."""
    uz = tg = 0
    for word in _WORD.findall(lower):
        if word in _UZ_WORDS or word.endswith(_UZ_SUFFIXES):
            uz += 1
        if word in _TG_WORDS or word.endswith(_TG_SUFFIXES):
            tg += 1
    return "uz" if uz >= tg else "tg"


def _looks_uzbek_latin(text: str, latin_letters: int) -> bool:
    if _TURKIC_LATIN.search(text):
        return False  # Azerbaijani / Turkish letters Uzbek does not use
    if len(_UZ_LATIN.findall(text)) * 60 >= latin_letters:
        return True
    words = _WORD.findall(text.lower())
    cues = sum(1 for w in words if w in _UZ_LATIN_WORDS or (len(w) > 4 and w.endswith(_UZ_LATIN_SUFFIXES)))
    return bool(words) and cues >= 0.3 * len(words)


def _lingua(text: str, *, kazakh_letters: bool) -> tuple[str | None, float]:
    """lingua's best guess and its confidence; Kazakh only if a Kazakh letter is present."""
    for candidate in _get_detector().compute_language_confidence_values(text):
        code = candidate.language.iso_code_639_1.name.lower()
        if code == "kk" and not kazakh_letters:
            continue
        return code, float(candidate.value)
    return None, 0.0


def detect_language(text: str, hint: str | None = None) -> str:
    """ISO 639-1 code of the text's language, or the (normalised) hint, or ``und``.

    The hint (e.g. a page's ``<html lang>`` or a source's configured language) is used when the
    text is too short (fewer than :data:`MIN_LETTERS` letters: empty, emoji-only, a link) or the
    detector is unsure.
    """
    fallback = normalize_language_code(hint) or "und"
    text = unicodedata.normalize("NFC", _sample(text))
    counts = _script_counts(text)
    letters = sum(counts.values())
    if letters < MIN_LETTERS:
        return fallback
    dominant = max(counts, key=lambda k: counts[k])
    if dominant == "georgian":
        return "ka"
    if dominant == "armenian":
        return "hy"
    lower = text.lower()
    if dominant == "cyrillic":
        central = _central_asian_cyrillic(lower, counts["cyrillic"])
        if central:
            return central
    if dominant == "latin" and _looks_uzbek_latin(text, counts["latin"]):
        return "uz"
    code, confidence = _lingua(text, kazakh_letters=bool(set(lower) & (_KK_ONLY | {"қ", "ғ"} | _KY)))
    if code is None:
        return fallback
    if confidence < _UNSURE and fallback != "und":
        return fallback
    return code
