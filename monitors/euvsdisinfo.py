"""Import EUvsDisinfo cases as candidate exemplars an analyst reviews before merging.

Reads the EUvsDisinfo export (``date,id,title,countries,keywords,languages,outlets``; keywords,
languages and outlets are ``+``-separated), suggests a narrative for each case by the
catalogue keywords its claim and tags contain, and writes ``<out>/<narrative>.yaml`` review
files (``accept: false`` on every candidate; unmatched cases go to ``_unassigned.yaml``).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.errors import ConfigError, ConfigIssue
from core.settings import Config
from monitors.catalogue import Catalogue, Narrative, catalogue_of
from monitors.narratives import find_keywords, keyword_pattern

__all__ = [
    "COLUMNS",
    "REQUIRED_COLUMNS",
    "UNASSIGNED",
    "Candidate",
    "import_cases",
    "import_command",
    "suggest_narrative",
    "write_candidates",
]

UNASSIGNED = "_unassigned"
COLUMNS = ("date", "id", "title", "countries", "keywords", "languages", "outlets")
"""The columns of the EUvsDisinfo export this reads (comma-separated, a header line first)."""
REQUIRED_COLUMNS = ("date", "id", "title", "keywords")
"""Columns without which a case cannot become a candidate (claim, case URL, date, tags)."""


@dataclass(frozen=True)
class Candidate:
    """One case proposed as an exemplar of ``narrative_id`` (or :data:`UNASSIGNED`)."""

    narrative_id: str
    text: str
    language: str
    case_url: str
    date: str
    keywords: tuple[str, ...]
    audience_languages: tuple[str, ...]
    outlets: tuple[str, ...]
    overlap: float

    def as_dict(self) -> dict[str, Any]:
        """Review-file entry."""
        return {
            "text": self.text,
            "language": self.language,
            "accept": False,
            "source": self.case_url,
            "date": self.date,
            "case_keywords": list(self.keywords),
            "audience_languages": list(self.audience_languages),
            "outlets": list(self.outlets),
            "overlap": round(self.overlap, 3),
        }


def _split(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split("+") if p.strip() and p.strip() != "Show more")


def suggest_narrative(text: str, case_keywords: Sequence[str], narratives: Sequence[Narrative]) -> tuple[str, float]:
    """The narrative whose keywords occur most in the claim and its tags (ties: shared tags).

    Returns ``(narrative id, overlap)`` with overlap = min((keyword hits + 0.25 * shared tags) / 2, 1);
    without any keyword hit the case is :data:`UNASSIGNED`.
    """
    haystack = text + "\n" + "\n".join(case_keywords)
    tags_lower = {k.lower() for k in case_keywords}
    best, best_score = UNASSIGNED, 0.0
    for n in narratives:
        hits = len(find_keywords(keyword_pattern(n.keywords), haystack))
        if not hits:
            continue
        score = hits + 0.25 * len(tags_lower & {t.lower() for t in n.tags})
        if score > best_score:
            best, best_score = n.id, score
    return best, min(best_score / 2.0, 1.0)


def _problem(path: Path, message: str) -> ConfigError:
    return ConfigError([ConfigIssue(str(path), "", message)])


def _read_rows(path: Path) -> list[dict[str, str]]:
    """The CSV's rows; a missing, unreadable, non-UTF-8 or wrongly laid out file is a ConfigError."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:  # -sig: spreadsheets write a BOM
            reader = csv.DictReader(fh)
            header = [c.strip().lower() for c in reader.fieldnames or ()]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                found = ", ".join(repr(c) for c in header[:12]) or "nothing"
                raise _problem(
                    path,
                    f"not an EUvsDisinfo export: missing column(s) {', '.join(missing)}; expected a comma-separated "
                    f"header line {','.join(COLUMNS)} (found {found})",
                )
            reader.fieldnames = header
            return [{k: v or "" for k, v in row.items() if isinstance(k, str)} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise _problem(path, f"cannot read EUvsDisinfo CSV: {exc}") from exc


def import_cases(
    csv_path: Path | str,
    catalogue: Catalogue,
    *,
    keywords: Sequence[str] = (),
    limit: int | None = None,
    min_overlap: float = 0.5,
) -> list[Candidate]:
    """Cases (optionally only those whose title or tags contain one of ``keywords``) as candidates.

    Duplicate claim titles are kept once; cases whose best overlap is below ``min_overlap`` are
    :data:`UNASSIGNED`. A missing, unreadable or non-UTF-8 file, or one without the
    :data:`REQUIRED_COLUMNS`, raises :class:`~core.errors.ConfigError` naming the file.
    """
    wanted = [k.lower() for k in keywords]
    out: list[Candidate] = []
    seen: set[str] = set()
    for row in _read_rows(Path(csv_path)):
        title = (row.get("title") or "").strip()
        if not title or title.lower() in seen:
            continue
        tags = _split(row.get("keywords") or "")
        if wanted and not any(w in title.lower() or any(w in t.lower() for t in tags) for w in wanted):
            continue
        seen.add(title.lower())
        nid, overlap = suggest_narrative(title, tags, catalogue.enabled)
        out.append(
            Candidate(
                narrative_id=nid if overlap >= min_overlap else UNASSIGNED,
                text=title,
                language="en",
                case_url=row.get("id") or "",
                date=row.get("date") or "",
                keywords=tags,
                audience_languages=_split(row.get("languages") or ""),
                outlets=_split(row.get("outlets") or ""),
                overlap=overlap,
            )
        )
        if limit is not None and len(out) >= limit:
            break
    return out


def write_candidates(candidates: Sequence[Candidate], out_dir: Path | str) -> dict[str, int]:
    """Write ``<out_dir>/<narrative>.yaml`` review files; returns candidates written per file."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[Candidate]] = {}
    for c in candidates:
        groups.setdefault(c.narrative_id, []).append(c)
    counts: dict[str, int] = {}
    for nid, items in sorted(groups.items()):
        items.sort(key=lambda c: -c.overlap)
        doc = {
            "narrative": nid,
            "instructions": "Set accept: true on claims that state this narrative, translate if useful, then "
            "copy them into exemplars of config/narratives/<narrative>.yaml. Never copy gold-set items.",
            "candidates": [c.as_dict() for c in items],
        }
        path = out / f"{nid}.yaml"
        path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=1000), encoding="utf-8")
        counts[path.name] = len(items)
    return counts


def import_command(config: Config, csv_path: Path | str, out_dir: Path | str) -> dict[str, Any]:
    """``narratives import-euvsdisinfo CSV``: write review files, return counts."""
    cands = import_cases(csv_path, catalogue_of(config))
    files = write_candidates(cands, out_dir)
    return {
        "cases": len(cands),
        "assigned": sum(1 for c in cands if c.narrative_id != UNASSIGNED),
        "unassigned": sum(1 for c in cands if c.narrative_id == UNASSIGNED),
        "out_dir": str(out_dir),
        "files": files,
    }
