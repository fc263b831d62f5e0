"""Connection settings and error mapping of the Elasticsearch backend (client exceptions built directly)."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elasticsearch import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    BadRequestError,
    NotFoundError,
    SSLError,
)
from elasticsearch import ConnectionError as ESConnectionError
from elasticsearch import ConnectionTimeout as ESConnectionTimeout

from core.documents import EmbeddingSpace
from core.errors import IndexUnavailable
from core.settings import ElasticsearchSettings
from index.base import INDEX_BACKENDS
from index.elastic import ElasticsearchIndex
from index.elastic_client import client_options, guard, parse_version, redact_url, unavailable_error

URLS = ["https://elastic:hunter2@es.example:9200"]


def _meta(status: int) -> ApiResponseMeta:
    return ApiResponseMeta(
        status=status,
        http_version="1.1",
        headers=HttpHeaders({"content-type": "application/json"}),
        duration=0.01,
        node=NodeConfig("http", "127.0.0.1", 9200),
    )


def _api_error(cls: type[ApiError], status: int, etype: str, reason: str) -> ApiError:
    body = {
        "error": {"root_cause": [{"type": etype, "reason": reason}], "type": etype, "reason": reason},
        "status": status,
    }
    return cls(etype, _meta(status), body)


def test_registered_as_elasticsearch_backend() -> None:
    assert INDEX_BACKENDS.get("elasticsearch") is ElasticsearchIndex


@pytest.mark.parametrize(
    ("exc", "needle"),
    [
        (ESConnectionError("Connection refused"), "cannot reach"),
        (ESConnectionTimeout("timed out"), "did not answer"),
        (SSLError("CERTIFICATE_VERIFY_FAILED"), "ca_certs"),
        (
            _api_error(
                AuthenticationException,
                401,
                "security_exception",
                "unable to authenticate user [elastic] for REST request [/]",
            ),
            "credentials (401)",
        ),
        (
            _api_error(
                AuthorizationException,
                403,
                "security_exception",
                "action [indices:admin/create] is unauthorized for user [narrawatch]",
            ),
            "403",
        ),
        (
            _api_error(
                BadRequestError,
                400,
                "media_type_header_exception",
                "Invalid media-type value on headers [Accept, Content-Type]",
            ),
            "elasticsearch>=8.13,<9",
        ),
        (
            _api_error(
                ApiError, 503, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered"
            ),
            "unavailable",
        ),
        (
            _api_error(
                ApiError, 429, "es_rejected_execution_exception", "rejected execution of coordinating operation"
            ),
            "overloaded",
        ),
        (
            _api_error(
                ApiError, 429, "circuit_breaking_exception", "[parent] Data too large, data for [<http_request>]"
            ),
            "retry later",
        ),
        (_api_error(ApiError, 500, "null_pointer_exception", 'Cannot invoke "Object.hashCode()"'), "500"),
    ],
)
def test_unavailable_error_explains_each_failure(exc: Exception, needle: str) -> None:
    mapped = unavailable_error(exc, URLS)
    assert isinstance(mapped, IndexUnavailable)
    assert needle in str(mapped)
    assert "hunter2" not in str(mapped)  # never print secrets
    assert "es.example:9200" in str(mapped)


def test_ordinary_api_errors_pass_through() -> None:
    not_found = _api_error(NotFoundError, 404, "index_not_found_exception", "no such index [x]")
    assert unavailable_error(not_found, URLS) is None
    bad = _api_error(BadRequestError, 400, "parsing_exception", "unknown query [foo]")
    assert unavailable_error(bad, URLS) is None
    with pytest.raises(NotFoundError), guard(URLS):
        raise not_found
    with pytest.raises(IndexUnavailable), guard(URLS):
        raise ESConnectionError("refused")


def test_client_options_take_secrets_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NARRAWATCH_ES_URL", "https://a:9200, https://b:9200")
    monkeypatch.setenv("NARRAWATCH_ES_PASSWORD", "s3cret")
    monkeypatch.delenv("NARRAWATCH_ES_API_KEY", raising=False)
    settings = ElasticsearchSettings(
        username="narrawatch", ca_certs="/certs/ca.crt", request_timeout=timedelta(seconds=12), max_retries=5
    )
    opts = client_options(settings)
    assert opts["hosts"] == ["https://a:9200", "https://b:9200"]
    assert opts["basic_auth"] == ("narrawatch", "s3cret")
    assert opts["ca_certs"] == "/certs/ca.crt" and opts["verify_certs"] is True
    assert opts["request_timeout"] == 12 and opts["max_retries"] == 5
    # The transport retries connection failures only; statuses are streaming_bulk's (no nesting).
    assert opts["retry_on_status"] == () and opts["retry_on_timeout"] is True
    monkeypatch.setenv("NARRAWATCH_ES_API_KEY", "a2V5OnNlY3JldA==")
    opts = client_options(settings)
    assert opts["api_key"] == "a2V5OnNlY3JldA==" and "basic_auth" not in opts


def test_redact_and_version_parsing() -> None:
    assert redact_url("https://elastic:pw@h:9200/x") == "https://elastic:***@h:9200/x"
    assert redact_url("http://127.0.0.1:9200") == "http://127.0.0.1:9200"
    assert parse_version({"version": {"number": "9.2.1"}}) == (9, 2)
    assert parse_version({"version": {"number": "8.19.0-SNAPSHOT"}}) == (8, 19)
    assert parse_version({}) == (0, 0)


def test_closed_port_fails_with_index_unavailable() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(IndexUnavailable, match="cannot reach Elasticsearch"):
        ElasticsearchIndex.for_tests(f"http://127.0.0.1:{port}", EmbeddingSpace("hashing", 8), "nwtest-closed")
