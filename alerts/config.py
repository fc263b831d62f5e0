"""Alert configuration: ``config/alerts/*.yaml`` with ``rules``, ``channels`` and ``outbox``.

Registered as the ``alerts`` section of :func:`core.settings.load_config`. Validation collects
every problem as ``file:path: message``: unknown keys, unknown channel kinds, unknown detectors,
invalid detector options, rules naming unknown channels, duplicate ids. Secrets are never in
YAML: channels name environment variables (``*_env``); a missing variable disables that channel
at start (logged "disabled ...") instead of failing the configuration.

Detector names are checked against :data:`core.events.DETECTORS`. Nothing registers on import:
:func:`register_builtins` adds the section and the built-in channel kinds, and the composition
root (:func:`narrawatch.builtins.register_builtins`) also registers the detectors before it loads
a config.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator

from alerts import channels
from alerts.channels.base import CHANNEL_KINDS, Channel, ChannelDisabled, ChannelSettings
from core.errors import ConfigIssue, UnknownNameError
from core.events import DETECTORS, Severity
from core.settings import (
    ActorType,
    Duration,
    StrictModel,
    display_path,
    format_loc,
    read_yaml,
    register_section,
    validation_issues,
)

__all__ = [
    "AlertsConfig",
    "DigestSettings",
    "OutboxSettings",
    "RuleSettings",
    "build_channels",
    "load_alerts",
    "load_alerts_dir",
    "register_builtins",
]

log = logging.getLogger(__name__)

_ID = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class DigestSettings(StrictModel):
    """Collect a rule's alerts and send them as one message ``every`` period."""

    every: Duration

    @field_validator("every")
    @classmethod
    def _positive(cls, v: timedelta) -> timedelta:
        if v < timedelta(minutes=1):
            raise ValueError("must be at least 1m")
        return v


class RuleSettings(StrictModel):
    """One alert rule: a detector with options, a scope, severity, suppression and channels."""

    id: Annotated[str, Field(pattern=_ID)]
    detector: str
    options: dict[str, Any] = Field(default_factory=dict)
    narratives: Literal["all"] | tuple[str, ...] = "all"
    sources: Literal["all"] | tuple[str, ...] = "all"
    """Keep events whose source or any evidence item comes from these source ids."""
    actors: Literal["all"] | tuple[ActorType, ...] = "all"
    """Keep events whose source or any evidence item comes from a source of these actor types
    (``actor:`` of the source, e.g. ``state_media``); combined with ``sources`` and ``countries``."""
    countries: Literal["all"] | tuple[Annotated[str, Field(pattern=r"^[A-Z]{2}$")], ...] = "all"
    """Keep events whose source or any evidence item comes from a source with this ``country:``."""
    description: Annotated[str, Field(max_length=2000)] = ""
    """What the rule is for, for people (shown in ``rules list`` and the rules page)."""
    severity: Severity = "warning"
    realert: Duration = timedelta(hours=6)
    """Suppress another alert for the same rule + subject (narrative, + outlet/language/source) this long."""
    digest: DigestSettings | None = None
    channels: tuple[str, ...] = ()
    enabled: bool = True


class OutboxSettings(StrictModel):
    """Where the outbox lives and how delivery is retried."""

    path: str | None = None
    """SQLite file; default ``<data_dir>/alerts/outbox.sqlite``; relative to the config directory."""
    backoff_base: Duration = timedelta(seconds=30)
    backoff_max: Duration = timedelta(hours=1)
    max_attempts: Annotated[int, Field(ge=1, le=10_000)] = 200
    """After this many failed attempts a delivery is marked ``failed`` (shown by ``alerts list``)."""


@dataclass(frozen=True)
class AlertsConfig:
    """All alert rules and channels of a config directory."""

    rules: tuple[RuleSettings, ...] = ()
    channels: tuple[ChannelSettings, ...] = ()
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    root: Path | None = None

    def rule(self, rule_id: str) -> RuleSettings:
        """The rule with this id, or :class:`UnknownNameError` listing the ids."""
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise UnknownNameError("alert rule", rule_id, [r.id for r in self.rules])

    def outbox_path(self, data_dir: Path) -> Path:
        """Absolute outbox path."""
        if self.outbox.path:
            p = Path(self.outbox.path).expanduser()
            if not p.is_absolute() and self.root is not None:
                p = self.root / p
            return p
        return data_dir / "alerts" / "outbox.sqlite"


def _files(root: Path) -> list[Path]:
    folder = root / "alerts"
    files = [root / "alerts.yaml"] if (root / "alerts.yaml").exists() else []
    if folder.is_dir():
        files += sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    return files


def load_alerts_dir(root: Path, issues: list[ConfigIssue]) -> AlertsConfig:
    """Read ``<root>/alerts.yaml`` and ``<root>/alerts/*.yaml``; append problems to ``issues``."""
    rules: list[tuple[str, tuple[int | str, ...], RuleSettings]] = []
    channels: list[ChannelSettings] = []
    channel_where: dict[str, str] = {}
    outbox: OutboxSettings | None = None
    for path in _files(root):
        rel = display_path(path, root)
        data, errs = read_yaml(path, root)
        issues.extend(errs)
        if errs or data is None:
            continue
        if not isinstance(data, dict):
            issues.append(ConfigIssue(rel, "", "expected a mapping with keys 'rules', 'channels', 'outbox'"))
            continue
        for key in sorted(set(data) - {"rules", "channels", "outbox"}):
            issues.append(ConfigIssue(rel, str(key), "unknown key (expected 'rules', 'channels' or 'outbox')"))
        if "outbox" in data:
            if outbox is not None:
                issues.append(ConfigIssue(rel, "outbox", "outbox is configured in more than one file"))
            try:
                outbox = OutboxSettings.model_validate(data["outbox"] or {})
            except ValidationError as exc:
                issues.extend(validation_issues(rel, exc, ("outbox",)))
        for i, entry in enumerate(_list(data, "channels", rel, issues)):
            where: tuple[int | str, ...] = ("channels", i)
            ch = _channel(entry, rel, where, issues)
            if ch is None:
                continue
            if ch.id in channel_where:
                issues.append(
                    ConfigIssue(
                        rel,
                        format_loc((*where, "id")),
                        f"duplicate channel id {ch.id!r} (also in {channel_where[ch.id]})",
                    )
                )
                continue
            channel_where[ch.id] = rel
            channels.append(ch)
        seen_rules: dict[str, str] = {r.id: f for f, _, r in rules}
        for i, entry in enumerate(_list(data, "rules", rel, issues)):
            where = ("rules", i)
            try:
                rule = RuleSettings.model_validate(entry)
            except ValidationError as exc:
                issues.extend(validation_issues(rel, exc, where))
                continue
            if rule.id in seen_rules:
                issues.append(
                    ConfigIssue(
                        rel,
                        format_loc((*where, "id")),
                        f"duplicate rule id {rule.id!r} (also in {seen_rules[rule.id]})",
                    )
                )
                continue
            seen_rules[rule.id] = rel
            _check_detector(rule, rel, where, issues)
            rules.append((rel, where, rule))
    for rel, where, rule in rules:
        for j, cid in enumerate(rule.channels):
            if cid not in channel_where:
                known = ", ".join(sorted(channel_where)) or "(none)"
                issues.append(
                    ConfigIssue(rel, format_loc((*where, "channels", j)), f"unknown channel {cid!r}; known: {known}")
                )
    return AlertsConfig(
        rules=tuple(r for _, _, r in rules), channels=tuple(channels), outbox=outbox or OutboxSettings(), root=root
    )


def _list(data: dict[str, Any], key: str, rel: str, issues: list[ConfigIssue]) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        issues.append(ConfigIssue(rel, key, "must be a list"))
        return []
    return value


def _channel(entry: Any, rel: str, where: tuple[int | str, ...], issues: list[ConfigIssue]) -> ChannelSettings | None:
    if not isinstance(entry, dict):
        issues.append(ConfigIssue(rel, format_loc(where), "each channel must be a mapping"))
        return None
    kind = entry.get("kind")
    if not isinstance(kind, str):
        issues.append(
            ConfigIssue(rel, format_loc((*where, "kind")), f"missing; one of: {', '.join(CHANNEL_KINDS.names())}")
        )
        return None
    try:
        model = CHANNEL_KINDS.get(kind).settings
    except UnknownNameError as exc:
        issues.append(ConfigIssue(rel, format_loc((*where, "kind")), str(exc)))
        return None
    try:
        return model.model_validate(entry)
    except ValidationError as exc:
        issues.extend(validation_issues(rel, exc, where))
        return None


def _check_detector(rule: RuleSettings, rel: str, where: tuple[int | str, ...], issues: list[ConfigIssue]) -> None:
    try:
        kind = DETECTORS.get(rule.detector)
    except UnknownNameError as exc:
        issues.append(ConfigIssue(rel, format_loc((*where, "detector")), str(exc)))
        return
    try:
        kind.options.model_validate(rule.options)
    except ValidationError as exc:
        issues.extend(validation_issues(rel, exc, (*where, "options")))


def load_alerts(root: Path, issues: list[ConfigIssue]) -> AlertsConfig:
    """The ``alerts`` section loader for :func:`core.settings.register_section`."""
    return load_alerts_dir(root, issues)


def build_channels(config: AlertsConfig) -> dict[str, Channel]:
    """Instantiate enabled channels; a missing prerequisite logs "disabled channel X: reason" and skips it."""
    out: dict[str, Channel] = {}
    for settings in config.channels:
        if not settings.enabled:
            log.info("disabled channel %s: enabled: false", settings.id)
            continue
        try:
            out[settings.id] = CHANNEL_KINDS.get(settings.kind).build(settings)
        except ChannelDisabled as exc:
            log.warning("disabled channel %s: %s", settings.id, exc)
    return out


def register_builtins() -> None:
    """Register the ``alerts`` config section and the built-in channel kinds (idempotent)."""
    channels.register_builtins()
    register_section("alerts", load_alerts)
