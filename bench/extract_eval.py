"""Measure crawlers.extract on the real page sets in ../shared/data.

    .venv/bin/python bench/extract_eval.py [--shared PATH] [--json]

* pages_trafilatura: a page passes when every ``with`` snippet is in the text and no ``without``
  snippet is (snippets that are in the title/metadata rather than the body are still counted).
* pages_fundus: a page passes when the title matches, the publication day matches (when expected),
  the first and last expected body paragraphs are found (whitespace-normalised, first 80 chars),
  and per-paragraph recall is reported.
Prints pass rates (and a Markdown table); --json prints the raw numbers.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.errors import ExtractionError
from crawlers.extract import extract_article

_WS = re.compile(r"\s+")


def norm(s: str) -> str:
    """Whitespace-normalised, case-folded text for snippet comparison."""
    return _WS.sub(" ", s).strip().casefold()


def fundus_cases(root: Path) -> list[dict[str, Any]]:
    """(html path, url, expected) for each fundus page; versions are matched to files by date order."""
    cases = []
    for expected_file in sorted(root.glob("*/*.json")):
        publisher = expected_file.stem
        meta_file = expected_file.parent / "meta.info"
        meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        versions = json.loads(expected_file.read_text())
        pages = sorted(expected_file.parent.glob(f"{publisher}_*.html.gz"))
        for version_key, page in zip(sorted(versions), pages, strict=False):
            cases.append(
                {
                    "path": page,
                    "url": meta.get(page.name, {}).get("url", f"https://example.org/{page.name}"),
                    "expected": versions[version_key],
                }
            )
    return cases


def paragraphs(expected: dict[str, Any]) -> list[str]:
    """Every expected body paragraph, in order."""
    body = expected.get("body") or {}
    out = list(body.get("summary") or [])
    for section in body.get("sections") or []:
        out.extend(section.get("paragraphs") or [])
    return [p for p in out if p.strip()]


def check_fundus(case: dict[str, Any]) -> dict[str, Any]:
    """Run one fundus case; returns the checks and a pass flag."""
    html = gzip.decompress(Path(case["path"]).read_bytes())
    exp = case["expected"]
    try:
        got = extract_article(html, case["url"])
    except ExtractionError as exc:
        return {"file": str(case["path"]), "passed": False, "error": str(exc), "recall": 0.0}
    text = norm(got.text)
    paras = [norm(p)[:80] for p in paragraphs(exp)]
    found = [p in text for p in paras]
    recall = sum(found) / len(found) if found else 1.0
    title_ok = not exp.get("title") or norm(exp["title"]) == norm(got.title)
    date_ok = True
    if exp.get("publishing_date"):
        date_ok = got.published is not None and got.published.date().isoformat() == _utc_day(exp["publishing_date"])
    body_ok = recall >= 0.8 and (not paras or (found[0] or found[-1]))
    return {
        "file": str(case["path"]),
        "passed": title_ok and date_ok and body_ok,
        "title_ok": title_ok,
        "date_ok": date_ok,
        "body_ok": body_ok,
        "recall": recall,
    }


def _utc_day(value: str) -> str:
    from datetime import UTC, datetime

    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.date().isoformat()
    return parsed.astimezone(UTC).date().isoformat()


def check_trafilatura(root: Path, url: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run one trafilatura eval case."""
    path = root / "html" / (spec["file"] + ".gz")
    if not path.exists():
        candidates = list((root / "html").glob(spec["file"].rsplit(".", 1)[0] + "*"))
        if not candidates:
            return {"file": spec["file"], "passed": None}
        path = candidates[0]
    html = gzip.decompress(Path(path).read_bytes())
    try:
        got = extract_article(html, url)
        text = norm(got.title + "\n" + got.text + "\n" + " ".join(got.links))
    except ExtractionError:
        text = ""
    with_ok = all(norm(s) in text for s in spec.get("with", []))
    without_ok = not any(norm(s) in text for s in spec.get("without", []))
    return {"file": str(path), "passed": with_ok and without_ok, "with_ok": with_ok, "without_ok": without_ok}


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    t0 = time.perf_counter()
    fundus = [check_fundus(c) for c in fundus_cases(args.shared / "pages_fundus")]
    traf_root = args.shared / "pages_trafilatura"
    evaldata = json.loads((traf_root / "evaldata.json").read_text())
    traf = [check_trafilatura(traf_root, url, spec) for url, spec in evaldata.items()]
    traf = [r for r in traf if r["passed"] is not None]
    t2 = time.perf_counter()

    def rate(rows: list[dict[str, Any]], key: str = "passed") -> float:
        return sum(bool(r.get(key)) for r in rows) / max(1, len(rows))

    result = {
        "fundus_pages": len(fundus),
        "fundus_pass_rate": rate(fundus),
        "fundus_title_ok": rate(fundus, "title_ok"),
        "fundus_date_ok": rate(fundus, "date_ok"),
        "fundus_body_ok": rate(fundus, "body_ok"),
        "fundus_mean_paragraph_recall": sum(r["recall"] for r in fundus) / max(1, len(fundus)),
        "trafilatura_pages": len(traf),
        "trafilatura_pass_rate": rate(traf),
        "trafilatura_with_ok": rate(traf, "with_ok"),
        "trafilatura_without_ok": rate(traf, "without_ok"),
        "pages_per_second": (len(fundus) + len(traf)) / max(1e-9, t2 - t0),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print("| set | pages | pass rate | detail |")
    print("|---|---|---|---|")
    print(
        f"| pages_fundus | {result['fundus_pages']} | {result['fundus_pass_rate']:.3f} |"
        f" title {result['fundus_title_ok']:.3f}, day {result['fundus_date_ok']:.3f},"
        f" body {result['fundus_body_ok']:.3f}, paragraph recall {result['fundus_mean_paragraph_recall']:.3f} |"
    )
    print(
        f"| pages_trafilatura | {result['trafilatura_pages']} | {result['trafilatura_pass_rate']:.3f} |"
        f" with {result['trafilatura_with_ok']:.3f}, without {result['trafilatura_without_ok']:.3f} |"
    )
    print(f"\nspeed: {result['pages_per_second']:.1f} pages/s (one process)")
    fails = [r for r in fundus if not r["passed"]]
    for r in fails[:15]:
        print("fundus fail:", {k: v for k, v in r.items() if k != "passed"}, file=sys.stderr)


if __name__ == "__main__":
    main()
