"""The analysts' web UI: server-rendered pages on the API's app (see :mod:`narrawatch.web.pages`)."""

from __future__ import annotations

from narrawatch.web.pages import mount_web

__all__ = ["mount_web"]
