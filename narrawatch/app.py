"""Building the service's parts from a config (shared by the CLI, the service and the API)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from core.settings import Config
from crawlers.state import CrawlStateStore
from index.base import DocumentIndex
from index.embed import Embedder
from narrawatch.backends import open_embedder, open_index
from narrawatch.pipeline import Pipeline

__all__ = ["App", "open_app"]


@dataclass
class App:
    """The opened parts of a running narrawatch."""

    config: Config
    embedder: Embedder
    index: DocumentIndex
    state: CrawlStateStore
    pipeline: Pipeline

    def close(self) -> None:
        """Close index, state and the pipeline's stores."""
        self.pipeline.close()
        self.index.close()
        self.state.close()


@contextmanager
def open_app(config: Config, *, read_only: bool = False) -> Iterator[App]:
    """Open embedder, index and crawl state for ``config``; closes them on exit."""
    embedder = open_embedder(config)
    index = open_index(config, embedder.space, read_only=read_only)
    state = CrawlStateStore(config.data_dir / "state.db")
    app = App(config, embedder, index, state, Pipeline(config, embedder=embedder, index=index, state=state))
    try:
        yield app
    finally:
        app.close()
