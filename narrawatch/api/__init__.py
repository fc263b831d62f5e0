"""HTTP API (``/api/v1``) and, on the same app, the analysts' web UI.

Entry points for the composition root: :func:`create_app`, :func:`serve`, :class:`ApiServer`,
and the token functions :func:`create_token`, :func:`revoke_token`, :func:`list_tokens`.
"""

from __future__ import annotations

from narrawatch.api.app import create_app
from narrawatch.api.auth import create_token, list_tokens, revoke_token
from narrawatch.api.server import ApiServer, serve

__all__ = ["ApiServer", "create_app", "create_token", "list_tokens", "revoke_token", "serve"]
