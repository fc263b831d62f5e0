"""The narrative catalogue: pydantic models for ``config/narratives/*.yaml`` and their loader.

One narrative a file. Importing this module registers the ``narratives`` config section, so
:func:`core.settings.load_config` validates every narrative file and reports problems as
``narratives/<file>.yaml:<path>: <message>``; the loaded :class:`Catalogue` is in
``config.extra["narratives"]``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from core.errors import ConfigError, ConfigIssue, UnknownNameError
from core.settings import Config, StrictModel, display_path, read_yaml, register_section, validation_issues
from monitors.decision import LearnedState, load_learned, narrative_fingerprint

__all__ = [
    "DEFAULT_THRESHOLDS",
    "Catalogue",
    "Narrative",
    "Thresholds",
    "catalogue_of",
    "load_catalogue",
    "load_narratives_section",
    "narrative_files",
    "register_builtins",
]

log = logging.getLogger(__name__)

_ID_RE = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
_LANG_RE = r"^[a-z]{2,3}$"

Score = Annotated[float, Field(ge=-1.0, le=2.0)]
ExemplarMap = dict[Annotated[str, Field(pattern=_LANG_RE)], tuple[Annotated[str, Field(min_length=3)], ...]]


class Thresholds(StrictModel):
    """Score cut-offs of one narrative, valid in one embedding space.

    ``calibrated_for`` names the space (an ``EmbeddingSpace.key`` or just the model name) the
    numbers were calibrated in; the matcher warns when the running model differs.
    """

    suggest: Score
    alert: Score
    calibrated_for: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.alert < self.suggest:
            raise ValueError(f"alert ({self.alert}) must be >= suggest ({self.suggest})")
        return self

    def applies_to(self, space_key: str, model: str) -> bool:
        """True when calibrated for this space (or uncalibrated, i.e. no claim either way)."""
        return self.calibrated_for is None or self.calibrated_for in (space_key, model)


DEFAULT_THRESHOLDS = Thresholds(suggest=0.5, alert=0.6)
"""Used for narratives without ``thresholds`` (placeholders until calibrated)."""


class Narrative(StrictModel):
    """One propaganda narrative: what it says, examples of it, and examples that are *not* it."""

    id: Annotated[str, Field(pattern=_ID_RE)]
    title: Annotated[str, Field(min_length=3)]
    description: str = ""
    exemplars: ExemplarMap
    """Short statements of the claim per language (ISO 639-1 code -> texts)."""
    counter_exemplars: ExemplarMap = Field(default_factory=dict)
    """Debunks quoting the claim and neutral reporting on the topic: a passage closer to
    these than to the exemplars is not a match."""
    keywords: tuple[Annotated[str, Field(min_length=2)], ...] = ()
    """Case-insensitive; matched at a word start, so ``иноагент`` also finds ``иноагентов``."""
    keyword_mode: Literal["boost", "gate", "off"] = "boost"
    """``gate``: no match unless a keyword occurs; ``boost``: add ``keyword_bonus``; ``off``."""
    keyword_bonus: Annotated[float, Field(ge=0.0, le=0.5)] = 0.03
    counter_margin: Annotated[float, Field(ge=-1.0, le=1.0)] = 0.0
    """A document matches only if best exemplar similarity - best counter similarity > this."""
    thresholds: Thresholds | None = None
    languages: tuple[Annotated[str, Field(pattern=_LANG_RE)], ...] = ()
    """Document languages this narrative is matched in; empty: all."""
    tags: tuple[str, ...] = ()
    enabled: bool = True

    @field_validator("exemplars")
    @classmethod
    def _some_exemplars(cls, v: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        if not any(v.values()):
            raise ValueError("at least one exemplar is required")
        return v

    def effective_thresholds(self) -> Thresholds:
        """The configured thresholds or :data:`DEFAULT_THRESHOLDS`."""
        return self.thresholds or DEFAULT_THRESHOLDS

    def all_exemplars(self) -> Iterator[tuple[str, str]]:
        """``(language, text)`` for every exemplar."""
        for lang, texts in self.exemplars.items():
            for t in texts:
                yield lang, t

    def fingerprint(self) -> str:
        """What a learned model of this narrative depends on (exemplars, counters, keywords)."""
        return narrative_fingerprint(
            [t for _, t in self.all_exemplars()], [t for _, t in self.all_counter_exemplars()], self.keywords
        )

    def all_counter_exemplars(self) -> Iterator[tuple[str, str]]:
        """``(language, text)`` for every counter-exemplar."""
        for lang, texts in self.counter_exemplars.items():
            for t in texts:
                yield lang, t


@dataclass(frozen=True)
class Catalogue:
    """The loaded narratives (enabled or not) and the file each came from."""

    narratives: tuple[Narrative, ...] = ()
    files: dict[str, Path] = field(default_factory=dict)
    """Narrative id -> the YAML file defining it."""
    learned: LearnedState | None = None
    """What ``narratives learn`` fitted (``<config>/learned/``), if anything."""

    @property
    def enabled(self) -> tuple[Narrative, ...]:
        """Narratives with ``enabled: true``."""
        return tuple(n for n in self.narratives if n.enabled)

    def get(self, narrative_id: str) -> Narrative:
        """The narrative with this id, or :class:`UnknownNameError` listing the ids."""
        for n in self.narratives:
            if n.id == narrative_id:
                return n
        raise UnknownNameError("narrative", narrative_id, [n.id for n in self.narratives])

    def __len__(self) -> int:
        return len(self.narratives)


def narrative_files(root: Path) -> list[Path]:
    """``<root>/narratives/*.yaml`` (and ``*.yml``), sorted."""
    folder = root / "narratives"
    if not folder.is_dir():
        return []
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def load_catalogue(root: Path | str, issues: list[ConfigIssue] | None = None) -> Catalogue:
    """Load ``<root>/narratives/*.yaml``; problems go to ``issues`` (invalid files are skipped).

    Without an ``issues`` list, problems are logged as warnings.
    """
    root = Path(root)
    sink: list[ConfigIssue] = [] if issues is None else issues
    narratives: list[Narrative] = []
    files: dict[str, Path] = {}
    for path in narrative_files(root):
        rel = display_path(path, root)
        data, errs = read_yaml(path, root)
        sink.extend(errs)
        if errs:
            continue
        if not isinstance(data, dict):
            sink.append(ConfigIssue(rel, "", "expected a mapping (one narrative a file)"))
            continue
        try:
            narrative = Narrative.model_validate(data)
        except ValidationError as exc:
            sink.extend(validation_issues(rel, exc))
            continue
        problems = _catalogue_rules(narrative)
        sink.extend(ConfigIssue(rel, where, msg) for where, msg in problems)
        if problems:
            continue
        if narrative.id in files:
            sink.append(
                ConfigIssue(
                    rel,
                    "id",
                    f"duplicate narrative id {narrative.id!r} (also in {display_path(files[narrative.id], root)})",
                )
            )
            continue
        files[narrative.id] = path
        narratives.append(narrative)
    learned: LearnedState | None = None
    if narratives:
        try:
            learned = load_learned(root)
        except ConfigError as exc:
            sink.extend(exc.issues)
    if issues is None:
        for issue in sink:
            log.warning("narratives: %s", issue)
    return Catalogue(narratives=tuple(narratives), files=files, learned=learned)


def _catalogue_rules(n: Narrative) -> list[tuple[str, str]]:
    """Rules for catalogue files beyond the model (the model also serves ad-hoc narratives)."""
    out = []
    if n.keyword_mode == "gate" and not n.keywords:
        out.append(("keywords", "keyword_mode 'gate' needs at least one keyword"))
    return out


def catalogue_of(config: Config) -> Catalogue:
    """The catalogue a loaded config holds (its ``narratives`` section), or one read from its root
    (a config loaded before the section was registered)."""
    section = config.extra.get("narratives")
    return section if isinstance(section, Catalogue) else load_catalogue(config.root)


def load_narratives_section(root: Path, issues: list[ConfigIssue]) -> Any:
    """The ``narratives`` section loader for :func:`core.settings.register_section`."""
    return load_catalogue(root, issues)


def register_builtins() -> None:
    """Register the ``narratives`` config section (idempotent)."""
    register_section("narratives", load_narratives_section)
