"""HTTP API: ``/api/v1`` routers over the read model (:mod:`narrawatch.read`), plus ``/healthz``
and ``/metrics`` (:func:`narrawatch.api.routers.mount_api`). :mod:`narrawatch.server` mounts them
beside the web UI; tokens, sessions and error rendering are :mod:`narrawatch.http`.
"""
