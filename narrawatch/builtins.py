"""Register every built-in by name, explicitly: the composition root calls this before it loads a config.

Nothing in ``core``, ``crawlers``, ``index``, ``monitors`` or ``alerts`` registers on import;
each package has a ``register_builtins`` function and this one calls them all:

* source kinds (``feed``, ``telegram``, ``site``: config model + spider) - :mod:`crawlers.sources`
* index backends (``embedded``, ``elasticsearch``, the latter imported only when used) and
  embedders - :mod:`index.builtins`
* detectors - :mod:`monitors.detectors`; the ``narratives`` config section - :mod:`monitors.catalogue`
* channel kinds and the ``alerts`` config section - :mod:`alerts.config`
* state backends (``sqlite``, ``postgresql``) - :mod:`narrawatch.state`

Callers: the CLI's ``main``, the server's ``create_app``, the demo, the benchmarks and the test
suite. A plugin registers the same way, after (or instead of) this call, e.g.
``DETECTORS.add("mine", DetectorKind(...))``; an unknown name fails listing the known ones.
"""

from __future__ import annotations

import threading

from alerts import config as alerts_config
from crawlers import sources
from index import builtins as index_builtins
from monitors import catalogue, detectors
from narrawatch import state

__all__ = ["register_builtins"]

_lock = threading.Lock()


def register_builtins() -> None:
    """Register every built-in source kind, index backend, embedder, detector, channel kind and
    config section (idempotent: a second call changes nothing)."""
    with _lock:
        sources.register_builtins()
        index_builtins.register_builtins()
        detectors.register_builtins()
        alerts_config.register_builtins()  # the alerts section loads before the narratives one
        catalogue.register_builtins()
        state.register_builtins()
