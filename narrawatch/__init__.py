"""The composition root: pipeline wiring, scheduler, CLI, HTTP API and web UI."""

__version__ = "0.1.0"
