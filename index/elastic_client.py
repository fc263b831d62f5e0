"""Connecting to Elasticsearch and turning transport/API failures into clear narrawatch errors.

Client/server versions: the official client sends ``Accept: application/vnd.elasticsearch+json;
compatible-with=<client major>``. A 9.x client therefore talks to 9.x servers; an 8.x server
answers it with ``400 media_type_header_exception``, which :func:`unavailable_error` explains
(install ``elasticsearch>=8.13,<9`` for 8.x servers; the code uses only APIs both majors have).

Retries have one owner per kind of failure, so attempts never multiply:

* the transport retries connection failures and timeouts (``max_retries``, with its backoff,
  on the next node) and **no HTTP status** (``retry_on_status=()``; its status retries would be
  immediate, without backoff, and nest inside ``streaming_bulk``'s);
* ``streaming_bulk`` retries bulk writes on 429/502/503/504, whole-request and per item, with
  exponential backoff (:data:`index.elastic_bulk.RETRY_STATUSES`);
* a read that gets 429 or 5xx fails at once with :class:`IndexUnavailable` (the caller, e.g.
  the next scheduled pass, retries).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

from elasticsearch import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    Elasticsearch,
    SSLError,
    TransportError,
    UnsupportedProductError,
)
from elasticsearch import ConnectionError as ESConnectionError
from elasticsearch import ConnectionTimeout as ESConnectionTimeout

from core.errors import IndexUnavailable
from core.settings import ElasticsearchSettings

__all__ = [
    "client_options",
    "connect",
    "guard",
    "parse_version",
    "redact_url",
    "unavailable_error",
]

log = logging.getLogger(__name__)


def redact_url(url: str) -> str:
    """``https://user:secret@host:9200`` -> ``https://user:***@host:9200``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    creds, _, host = rest.partition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def _where(urls: Sequence[str]) -> str:
    return ", ".join(redact_url(u) for u in urls) or "(no URL)"


def unavailable_error(exc: BaseException, urls: Sequence[str]) -> IndexUnavailable | None:
    """The :class:`IndexUnavailable` a client exception means, or None for ordinary API errors.

    Covers: TLS failures, unreachable or timing-out nodes, 401 (bad credentials), 403 (missing
    privileges), a server that is not Elasticsearch, a client/server major-version mismatch, and
    the transient statuses 429 (overloaded) and 5xx. Every :class:`IndexUnavailable` is worth
    retrying later; other API errors (a 400 on a malformed request, 404) are returned as None.
    """
    where = _where(urls)
    if isinstance(exc, SSLError):
        return IndexUnavailable(
            f"TLS handshake with Elasticsearch at {where} failed ({exc}); set index.elasticsearch.ca_certs to the"
            " cluster CA (docker: certs/ca/ca.crt) or verify_certs: false for a throw-away test cluster"
        )
    if isinstance(exc, ESConnectionTimeout):
        return IndexUnavailable(f"Elasticsearch at {where} did not answer in time ({exc})")
    if isinstance(exc, ESConnectionError):
        return IndexUnavailable(
            f"cannot reach Elasticsearch at {where} ({exc}); is it running? (docker compose up -d elasticsearch,"
            " or set NARRAWATCH_ES_URL)"
        )
    if isinstance(exc, AuthenticationException):
        return IndexUnavailable(
            f"Elasticsearch at {where} rejected our credentials (401); check index.elasticsearch.username and the"
            " password / API key environment variables (password_env, api_key_env)"
        )
    if isinstance(exc, AuthorizationException):
        return IndexUnavailable(
            f"Elasticsearch at {where} refused the request (403: {exc}); the user needs the manage, read and write"
            " privileges on <index_prefix>-* and manage_index_templates on the cluster"
        )
    if isinstance(exc, UnsupportedProductError):
        return IndexUnavailable(f"the server at {where} is not Elasticsearch ({exc})")
    if isinstance(exc, ApiError):
        body = exc.body if isinstance(exc.body, dict) else {}
        raw = body.get("error")
        err: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if exc.meta.status == 400 and err.get("type") == "media_type_header_exception":
            return IndexUnavailable(
                f"Elasticsearch at {where} rejected the client's compatibility header ({err.get('reason')}); the"
                " installed elasticsearch-py major version must match the server's (pip install"
                " 'elasticsearch>=8.13,<9' for an 8.x server)"
            )
        if exc.meta.status == 429:
            return IndexUnavailable(
                f"Elasticsearch at {where} is overloaded and rejected the request (429 {err.get('type', '')}:"
                f" {err.get('reason', exc)}); retry later"
            )
        if exc.meta.status >= 500:
            return IndexUnavailable(f"Elasticsearch at {where} is unavailable ({exc.meta.status}: {exc})")
        return None
    if isinstance(exc, TransportError):
        return IndexUnavailable(f"Elasticsearch at {where}: {exc}")
    return None


@contextlib.contextmanager
def guard(urls: Sequence[str]) -> Iterator[None]:
    """Re-raise connection, TLS, auth and version problems as :class:`IndexUnavailable`."""
    try:
        yield
    except (ApiError, TransportError) as exc:
        mapped = unavailable_error(exc, urls)
        if mapped is None:
            raise
        raise mapped from exc


def client_options(settings: ElasticsearchSettings) -> dict[str, Any]:
    """Keyword arguments for :class:`elasticsearch.Elasticsearch` from the config (secrets from env)."""
    opts: dict[str, Any] = {
        "hosts": list(settings.resolved_urls()),
        "request_timeout": settings.request_timeout.total_seconds(),
        "max_retries": settings.max_retries,
        "retry_on_timeout": True,
        "retry_on_status": (),  # statuses are retried by streaming_bulk only (module doc)
        "verify_certs": settings.verify_certs,
    }
    if settings.ca_certs:
        opts["ca_certs"] = settings.ca_certs
    api_key = os.environ.get(settings.api_key_env) if settings.api_key_env else None
    password = os.environ.get(settings.password_env) if settings.password_env else None
    if api_key:
        opts["api_key"] = api_key
    elif settings.username:
        if password is None:
            log.warning("index.elasticsearch.username is set but $%s is empty", settings.password_env)
        opts["basic_auth"] = (settings.username, password or "")
    return opts


def connect(settings: ElasticsearchSettings, **overrides: Any) -> tuple[Elasticsearch, dict[str, Any]]:
    """A client plus the server's ``GET /`` info; fails fast with :class:`IndexUnavailable`."""
    opts = client_options(settings) | overrides
    urls = list(opts["hosts"])
    client = Elasticsearch(**opts)
    try:
        with guard(urls):
            info = dict(client.info().body)
    except Exception:
        client.close()
        raise
    log.info("connected to Elasticsearch %s at %s", info.get("version", {}).get("number"), _where(urls))
    return client, info


def parse_version(info: dict[str, Any]) -> tuple[int, int]:
    """``(major, minor)`` from a ``GET /`` response (``(0, 0)`` when missing)."""
    number = str(info.get("version", {}).get("number", "0.0"))
    parts = ([*number.split("-", 1)[0].split("."), "0", "0"])[:2]
    try:
        return int(parts[0]), int(parts[1])
    except ValueError:
        return 0, 0
