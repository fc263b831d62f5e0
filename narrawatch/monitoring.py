"""Wires narrative matching, detectors and alerts to the ingest pipeline (filled in with issue 3)."""

from __future__ import annotations

from typing import Protocol

from narrawatch.app import App

__all__ = ["Monitoring", "attach_monitoring"]


class Monitoring(Protocol):
    """Post-pass work: detectors, alert rules, delivery."""

    def after_pass(self) -> None:
        """Run detectors and deliver due alerts."""
        ...


def attach_monitoring(app: App) -> Monitoring | None:
    """Attach matching to the pipeline when narratives are configured; None when there are none."""
    return None
