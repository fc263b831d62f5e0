"""Time-split evaluation sets for narrative detection, built from the real data in ``../shared/data``.

The question these sets answer: does the matcher tell a document that *asserts* a propaganda claim
from one that merely shares its *topic* (a debunk quoting the claim, ordinary news)? Every item is a
dict in the project's gold JSONL format::

    {"text", "language": "en"|"ru", "narratives": [ids], "origin", "date": "YYYY-MM-DD",
     "kind": "assertion"|"debunk"|"background"|"claim"}

Splits (see ``docs/evalsets.md``):

- ``euvsdisinfo-train`` / ``euvsdisinfo-test``: EUvsDisinfo cases 2015-2016 / 2017, each case's
  ``title + "\\n\\n" + summary`` as an assertion labelled with the narratives its tags map to
  (:data:`NARRATIVE_TAGS`; ``[]`` when none: it asserts some other claim), and its ``disproof``
  (URLs removed, short boilerplate skipped) as a debunk labelled ``[]``;
- ``euvsdisinfo-claims-2018-2019``: claim titles of 2018-2019 cases, labelled by the same mapping;
- ``telegram-background-train`` / ``telegram-background-test``: real Russian Telegram posts before /
  from :data:`TELEGRAM_SPLIT_DATE` (UTC), labelled ``[]``.

Only the ``*-train`` splits may be used for fitting (exemplars, thresholds). A normalised text that
occurs in a train split never occurs in a test split. No randomness: subsamples take evenly spaced
posts in date order.

CLI: ``python -m bench.narrative_evalsets --out DIR [--limit-background N] [--shared PATH]``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "CASES_FILE",
    "CASES_WITH_TEXT_FILE",
    "CATALOGUE_DIR",
    "DEBUNK_MIN_CHARS",
    "NARRATIVE_TAGS",
    "POST_MIN_CHARS",
    "SPLITS",
    "TELEGRAM_FILE",
    "TELEGRAM_SPLIT_DATE",
    "build_all",
    "claims_2018_2019",
    "euvsdisinfo_split",
    "main",
    "manifest",
    "narratives_for_tags",
    "normalise_text",
    "shared_data_dir",
    "subsample",
    "telegram_background",
    "write_sets",
]

CASES_WITH_TEXT_FILE = "euvsdisinfo_cases_2015_2017_with_text.csv"
CASES_FILE = "euvsdisinfo_cases.csv"
TELEGRAM_FILE = "telegram_ru_posts.jsonl"

CATALOGUE_DIR = Path(__file__).resolve().parent / "eval_catalogues" / "euvsdisinfo"
"""The evaluation catalogue (``<dir>/narratives/<id>.yaml``); its ids are the keys of :data:`NARRATIVE_TAGS`."""

NARRATIVE_TAGS: dict[str, tuple[str, ...]] = {
    "maidan-western-coup": ("Coup", "Euromaidan", "Junta"),
    "ukraine-nazi-regime": ("Nazi/Fascist",),
    "kyiv-genocide-donbas": ("Genocide",),
    "west-war-preparation": ("Warmongering", "War preparation", "WWIII", "Encircling Russia"),
    "west-russophobia": ("Russophobia", "Anti-Russian"),
    "mh17-not-russia": ("MH17",),
    "soros-puppet-master": ("George Soros",),
    "sanctions-backfire": ("Sanctions",),
    "migrants-destroying-europe": ("Migration crisis", "Refugees", "Migration", "Islamisation"),
    "crimea-rightfully-russian": ("Crimea",),
    "ukraine-failed-state": ("Ukrainian statehood", "Ukrainian disintegration"),
    "global-elites-rule": ("Secret elites / global elites", "Deep state"),
    "west-moral-decay": ("LGBT", "Perversion", "European values", "Western values"),
    "west-colour-revolutions-destabilise": ("Colour revolutions", "Destabilising Russia"),
}
"""THE tag -> narrative mapping (narrative id -> EUvsDisinfo free tags, matched case-insensitively).

The only place it is defined; the YAML files in :data:`CATALOGUE_DIR` must have exactly these ids."""

SPLITS: tuple[str, ...] = (
    "euvsdisinfo-train",
    "euvsdisinfo-test",
    "euvsdisinfo-claims-2018-2019",
    "telegram-background-train",
    "telegram-background-test",
)
TRAIN_SPLITS: tuple[str, ...] = tuple(s for s in SPLITS if s.endswith("-train"))

TRAIN_PERIOD = (date(2015, 1, 1), date(2016, 12, 31))
TEST_PERIOD = (date(2017, 1, 1), date(2017, 12, 31))
CLAIMS_PERIOD = (date(2018, 1, 1), date(2019, 12, 31))
TELEGRAM_SPLIT_DATE = datetime(2024, 11, 15, tzinfo=UTC)
"""Posts strictly before this instant are ``telegram-background-train``, the rest ``-test``."""

DEBUNK_MIN_CHARS = 80
"""Disproofs shorter than this after URL removal ("No evidence given.") are skipped: boilerplate."""
POST_MIN_CHARS = 40

_URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_NON_WORD_RE = re.compile(r"[\W_]+", re.UNICODE)
_SPACE_RE = re.compile(r"[ \t\r\f\v]+")
_TAG_TO_NARRATIVES: dict[str, tuple[str, ...]] = {}
for _nid, _tags in NARRATIVE_TAGS.items():
    for _tag in _tags:
        _TAG_TO_NARRATIVES[_tag.casefold()] = (*_TAG_TO_NARRATIVES.get(_tag.casefold(), ()), _nid)

Item = dict[str, Any]


def shared_data_dir() -> Path:
    """``$NARRAWATCH_SHARED_DATA`` or ``<repo>/../shared/data``."""
    env = os.environ.get("NARRAWATCH_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def normalise_text(text: str) -> str:
    """The key for duplicate detection: casefolded, URLs dropped, punctuation and spacing collapsed."""
    return _NON_WORD_RE.sub(" ", _URL_RE.sub(" ", text).casefold()).strip()


def narratives_for_tags(tags: Iterable[str]) -> list[str]:
    """Narrative ids the tags map to, in :data:`NARRATIVE_TAGS` order (unknown tags are ignored)."""
    hit = {nid for t in tags for nid in _TAG_TO_NARRATIVES.get(t.strip().casefold(), ())}
    return [nid for nid in NARRATIVE_TAGS if nid in hit]


def _clean(text: str) -> str:
    """Strip URLs and trailing spaces, collapse runs of blank lines."""
    text = _URL_RE.sub("", text)
    lines = [_SPACE_RE.sub(" ", line).strip() for line in text.replace("\r\n", "\n").split("\n")]
    out = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return re.sub(r"\(\s*\)|\[\s*\]", "", out).strip()


def _in(d: date, period: tuple[date, date]) -> bool:
    return period[0] <= d <= period[1]


def _dedupe(items: Iterable[Item], exclude: set[str] | None = None) -> list[Item]:
    """Drop items whose normalised text is in ``exclude`` or was seen before in ``items``.

    A repeated text of the same kind contributes its labels to the first occurrence (one case
    reported twice with different tags); one of another kind is dropped.
    """
    seen: dict[str, Item] = {}
    out: list[Item] = []
    for item in items:
        key = normalise_text(item["text"])
        if not key or (exclude is not None and key in exclude):
            continue
        first = seen.get(key)
        if first is None:
            seen[key] = item
            out.append(item)
        elif first["kind"] == item["kind"] and item["narratives"]:
            merged = set(first["narratives"]) | set(item["narratives"])
            first["narratives"] = [nid for nid in NARRATIVE_TAGS if nid in merged]
    return out


def _read_cases_with_text(shared: Path) -> list[dict[str, str]]:
    with (shared / CASES_WITH_TEXT_FILE).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=";"))


def euvsdisinfo_split(shared: Path, period: tuple[date, date]) -> list[Item]:
    """Assertions (title + summary) and debunks (disproof) of the 2015-2017 cases dated in ``period``.

    Not deduplicated (see :func:`build_all`). ``origin``: ``euvsdisinfo_2015_2017:row<N>:issue=<I>:<field>``,
    N the 0-based data row of the CSV (as in ``tests/data/gold``).
    """
    out: list[Item] = []
    for row_no, row in enumerate(_read_cases_with_text(shared)):
        day = datetime.strptime(row["date"].strip(), "%d.%m.%Y").date()
        if not _in(day, period):
            continue
        where = f"euvsdisinfo_2015_2017:row{row_no}:issue={row['issue'].strip()}"
        tags = [t for t in row["keywords"].split(",") if t.strip()]
        title, summary = _clean(row["title"]), _clean(row["summary"])
        text = f"{title}\n\n{summary}" if title and summary and title != summary else (title or summary)
        if text:
            out.append(
                {
                    "text": text,
                    "language": "en",
                    "narratives": narratives_for_tags(tags),
                    "origin": f"{where}:summary",
                    "date": day.isoformat(),
                    "kind": "assertion",
                }
            )
        disproof = _clean(row["disproof"])
        if len(disproof) >= DEBUNK_MIN_CHARS:
            out.append(
                {
                    "text": disproof,
                    "language": "en",
                    "narratives": [],
                    "origin": f"{where}:disproof",
                    "date": day.isoformat(),
                    "kind": "debunk",
                }
            )
    return out


def claims_2018_2019(shared: Path, period: tuple[date, date] = CLAIMS_PERIOD) -> list[Item]:
    """Claim titles of ``euvsdisinfo_cases.csv`` dated in ``period``, labelled from its ``+``-separated tags."""
    out: list[Item] = []
    with (shared / CASES_FILE).open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            day = date.fromisoformat(row["date"].strip()[:10])
            text = _clean(row["title"])
            if not _in(day, period) or not text:
                continue
            out.append(
                {
                    "text": text,
                    "language": "en",
                    "narratives": narratives_for_tags(row["keywords"].split("+")),
                    "origin": f"euvsdisinfo_cases:{row['id'].strip()}:title",
                    "date": day.isoformat(),
                    "kind": "claim",
                }
            )
    return out


def _post_time(value: str) -> datetime:
    t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


def telegram_background(shared: Path, part: str) -> list[Item]:
    """Posts of ``telegram_ru_posts.jsonl`` before (``part="train"``) or from (``"test"``) the split date.

    Posts shorter than :data:`POST_MIN_CHARS` are skipped; sorted by time, channel and message id.
    """
    if part not in ("train", "test"):
        raise ValueError(f"part must be 'train' or 'test', not {part!r}")
    rows: list[tuple[datetime, int, int, Item]] = []
    with (shared / TELEGRAM_FILE).open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            post = json.loads(line)
            text = (post.get("text") or "").strip()
            if len(text) < POST_MIN_CHARS:
                continue
            when = _post_time(post["date"])
            if (when < TELEGRAM_SPLIT_DATE) != (part == "train"):
                continue
            cid, mid = int(post["channel_id"]), int(post["message_id"])
            item: Item = {
                "text": text,
                "language": "ru",
                "narratives": [],
                "origin": f"telegram_ru_posts:{cid}/{mid}",
                "date": when.date().isoformat(),
                "kind": "background",
            }
            rows.append((when, cid, mid, item))
    rows.sort(key=lambda r: r[:3])
    return [r[3] for r in rows]


def subsample(items: Sequence[Item], limit: int | None) -> list[Item]:
    """At most ``limit`` items, evenly spaced over ``items`` (kept in order): deterministic and time-spread."""
    n = len(items)
    if limit is None or limit >= n:
        return list(items)
    if limit <= 0:
        return []
    return [items[(i * n) // limit] for i in range(limit)]


GOLD_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "gold"
"""The project's hand-labelled sets: their texts never enter a background split."""


def gold_texts(folder: Path = GOLD_DIR) -> set[str]:
    """Normalised texts of every ``*.jsonl`` gold file in ``folder``."""
    out: set[str] = set()
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.add(normalise_text(json.loads(line)["text"]))
    return out


def build_all(
    shared_dir: Path | str | None = None,
    limit_background: int | None = None,
    exclude: set[str] | None = None,
) -> dict[str, list[Item]]:
    """Every split of :data:`SPLITS`, deduplicated; ``limit_background`` caps each Telegram split.

    ``exclude`` (default: the texts of the project's gold sets, :func:`gold_texts`) are normalised
    texts that no background split may contain, so a gold item is never also background.

    Train splits are deduplicated within themselves; every test split additionally loses texts
    that occur in any train split; the 2018-2019 claims also lose texts equal to a train case's title.
    """
    shared = Path(shared_dir) if shared_dir is not None else shared_data_dir()
    train = _dedupe(euvsdisinfo_split(shared, TRAIN_PERIOD))
    held = gold_texts() if exclude is None else exclude
    bg_train = _dedupe(telegram_background(shared, "train"), exclude=held)
    train_keys = {normalise_text(i["text"]) for i in (*train, *bg_train)}
    train_titles = {normalise_text(i["text"].split("\n\n", 1)[0]) for i in train if i["kind"] == "assertion"}
    sets = {
        "euvsdisinfo-train": train,
        "euvsdisinfo-test": _dedupe(euvsdisinfo_split(shared, TEST_PERIOD), exclude=train_keys),
        "euvsdisinfo-claims-2018-2019": _dedupe(claims_2018_2019(shared), exclude=train_keys | train_titles),
        "telegram-background-train": subsample(bg_train, limit_background),
        "telegram-background-test": subsample(
            _dedupe(telegram_background(shared, "test"), exclude=train_keys | held), limit_background
        ),
    }
    return {name: sets[name] for name in SPLITS}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest(sets: Mapping[str, Sequence[Item]], shared: Path, limit_background: int | None = None) -> dict[str, Any]:
    """Counts per split, per narrative and per kind, date ranges, the mapping and the sources' sha256."""
    splits: dict[str, Any] = {}
    for name, items in sets.items():
        per_narr = Counter(nid for i in items for nid in i["narratives"])
        dates = sorted(i["date"] for i in items)
        splits[name] = {
            "items": len(items),
            "positives": sum(1 for i in items if i["narratives"]),
            "kinds": dict(sorted(Counter(i["kind"] for i in items).items())),
            "narratives": {nid: per_narr.get(nid, 0) for nid in NARRATIVE_TAGS},
            "date_range": [dates[0], dates[-1]] if dates else None,
        }
    return {
        "builder": "bench/narrative_evalsets.py",
        "catalogue": "bench/eval_catalogues/euvsdisinfo",
        "parameters": {
            "train_period": [d.isoformat() for d in TRAIN_PERIOD],
            "test_period": [d.isoformat() for d in TEST_PERIOD],
            "claims_period": [d.isoformat() for d in CLAIMS_PERIOD],
            "telegram_split": TELEGRAM_SPLIT_DATE.isoformat(),
            "debunk_min_chars": DEBUNK_MIN_CHARS,
            "post_min_chars": POST_MIN_CHARS,
            "limit_background": limit_background,
        },
        "narrative_tags": {nid: list(tags) for nid, tags in NARRATIVE_TAGS.items()},
        "sources": {
            name: {"sha256": _sha256(shared / name), "bytes": (shared / name).stat().st_size}
            for name in (CASES_WITH_TEXT_FILE, CASES_FILE, TELEGRAM_FILE)
        },
        "splits": splits,
    }


def write_sets(sets: Mapping[str, Sequence[Item]], out: Path, meta: Mapping[str, Any]) -> None:
    """``<out>/<split>.jsonl`` for every split and ``<out>/MANIFEST.json``."""
    out.mkdir(parents=True, exist_ok=True)
    for name, items in sets.items():
        with (out / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
            for item in items:
                fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    (out / "MANIFEST.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _summary(meta: Mapping[str, Any]) -> str:
    lines = []
    for name, s in meta["splits"].items():
        kinds = ", ".join(f"{k} {v}" for k, v in s["kinds"].items())
        rng = " .. ".join(s["date_range"] or ["-", "-"])
        lines.append(f"{name:30} {s['items']:6} items ({kinds}; {s['positives']} positive)  {rng}")
    names = [n for n in meta["splits"] if n.startswith("euvsdisinfo")]
    lines.append("narrative positives: " + " / ".join(names))
    for nid in NARRATIVE_TAGS:
        counts = " / ".join(str(meta["splits"][n]["narratives"][nid]) for n in names)
        lines.append(f"  {nid:38} {counts}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: build every split, write it under ``--out``, print a summary."""
    ap = argparse.ArgumentParser(prog="python -m bench.narrative_evalsets", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="output folder (created)")
    ap.add_argument("--limit-background", type=int, default=None, help="cap each Telegram split (evenly spaced)")
    ap.add_argument("--shared", type=Path, default=None, help="shared data folder (default: $NARRAWATCH_SHARED_DATA)")
    args = ap.parse_args(argv)
    shared = args.shared or shared_data_dir()
    if not (shared / CASES_WITH_TEXT_FILE).is_file():
        print(f"shared data not found in {shared}", file=sys.stderr)
        return 2
    sets = build_all(shared, args.limit_background)
    meta = manifest(sets, shared, args.limit_background)
    write_sets(sets, args.out, meta)
    print(_summary(meta))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
