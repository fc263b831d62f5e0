"""Terminal output shared by the CLI and the demo: JSON, live crawl progress, crawl summaries.

A neutral module (it imports neither ``narrawatch.cli`` nor ``narrawatch.demo``), so both
front-ends print the same way without importing each other.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from narrawatch.pipeline import SourceReport

__all__ = ["print_json", "print_reports", "print_table", "progress_printer"]


def print_json(data: Any) -> None:
    """``data`` as indented UTF-8 JSON on stdout (dates and other objects via ``str``)."""
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A rich table on stdout."""
    # rich is imported on use: JSON-only commands never pay for it.
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def progress_printer(sources: Sequence[str]) -> tuple[Callable[[dict[str, Any]], None], Callable[[], None]]:
    """A live rich progress display on a terminal; a no-op otherwise. Returns ``(on_event, stop)``."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        return (lambda e: None), (lambda: None)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[source]}"),
        TextColumn("fetched {task.fields[fetched]} · docs {task.fields[docs]} · dropped {task.fields[dropped]}"),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
    )
    tasks = {
        sid: progress.add_task(sid, total=None, source=sid, fetched=0, docs=0, dropped=0, status="") for sid in sources
    }
    counts: dict[str, dict[str, int]] = {sid: {"fetched": 0, "docs": 0, "dropped": 0} for sid in sources}
    progress.start()

    def on_event(event: dict[str, Any]) -> None:
        sid = event.get("source", "")
        if sid not in tasks:
            return
        kind = event.get("event")
        c = counts[sid]
        if kind == "fetched":
            c["fetched"] += 1
        elif kind == "document":
            c["docs"] += 1
        elif kind == "dropped":
            c["dropped"] += 1
        status = ""
        if kind == "source_done":
            status = "[green]done" if event.get("ok") else "[red]failed"
        fields: dict[str, Any] = dict(c)
        if status:
            fields["status"] = status
        progress.update(tasks[sid], **fields)

    return on_event, progress.stop


def print_reports(reports: list[SourceReport], as_json: bool) -> None:
    """The crawl summary: one row per source (JSON: :meth:`SourceReport.as_dict` each)."""
    if as_json:
        print_json([r.as_dict() for r in reports])
        return
    rows = []
    for r in reports:
        dropped = ", ".join(f"{k}={v}" for k, v in sorted(r.dropped.items())) or "-"
        last = r.errors[-1] if r.errors else "unknown"
        status = "ok" if r.ok else "FAILED: " + (last if len(last) <= 90 else last[:87] + "...")
        rows.append((r.source_id, str(r.fetched), str(r.new), str(r.updated), str(r.unchanged), dropped, status))
    print_table("crawl summary", ("source", "fetched", "new", "updated", "unchanged", "dropped", "status"), rows)
