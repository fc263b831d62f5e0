"""The read model: what the CLI, the HTTP API and the web pages ask of an :class:`~narrawatch.app.App`.

One module per concept; each function takes the App plus typed parameters
(:mod:`narrawatch.read.params`), returns frozen records whose ``as_dict()`` is the one JSON
shape every surface prints, and raises :mod:`core.errors` (``NotFoundError``, ``ConflictError``,
``InvalidRequestError``, ``UnknownNameError``), which the API maps to HTTP statuses.

* :mod:`~narrawatch.read.search` — search, ranking, highlights, export rows (edit this file to
  change how search ranks and looks everywhere)
* :mod:`~narrawatch.read.documents` — one document
* :mod:`~narrawatch.read.narratives` — narratives, matches, verdicts
* :mod:`~narrawatch.read.alerts` — alerts inbox, acknowledgement, counts, rule dry-run
* :mod:`~narrawatch.read.sources` — source health (also the source-silence detector's input)
* :mod:`~narrawatch.read.trace` — spread tracing, its exports and graph
* :mod:`~narrawatch.read.themes` — emerging themes and their promotion to draft narratives
"""
