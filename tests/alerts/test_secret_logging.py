"""No secret reaches a log: deliveries through the real Slack and Telegram channels, logged at DEBUG.

httpx logs every request URL at INFO; a Telegram bot token and a Slack webhook URL are URLs. The
service's logging (core.logging.setup_logging) holds httpx/httpcore at WARNING and masks known
secret shapes and every secret a channel read from the environment at the handler.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from alerts.config import build_channels
from alerts.outbox import Dispatcher, Outbox
from alerts.rules import AlertEngine
from core.events import DetectorEvent
from core.logging import QUIET_LOGGERS, setup_logging
from core.redact import MASK, redact
from tests.alerts.conftest import NOW
from tests.alerts.test_delivery import write_config
from tests.support.sinks import WebhookReceiver

# Shaped like the real thing (a bot id, a 35-character secret; Slack's T/B/secret path), made up.
BOT_TOKEN = "7312945680:AAHk3v2Lq9XyZ_abcDEF-ghIJKlmnOPqrS"
SLACK_PATH = "/services/T04ABCD1EFG/B05HIJK2LMN/q8W3eR5tY7uI9oP1aS3dF5gH"


@pytest.fixture()
def log_sandbox() -> Iterator[None]:
    """setup_logging rewires the root logger; put it back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    try:
        yield
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in handlers:
            root.addHandler(h)
        root.setLevel(level)
        for name, lvl in quiet.items():
            logging.getLogger(name).setLevel(lvl)


def _deliver(tmp_path: Path, events: list[DetectorEvent], receiver: WebhookReceiver, mp: pytest.MonkeyPatch) -> None:
    """Send through both channels: once acknowledged, once refused by the receiver (503)."""
    mp.setenv("NW_TEST_SLACK", receiver.url + SLACK_PATH)
    mp.setenv("NW_TEST_TG", BOT_TOKEN)
    cfg = write_config(
        tmp_path,
        "  - {id: sl, kind: slack, webhook_url_env: NW_TEST_SLACK}\n"
        f"  - {{id: tg, kind: telegram, bot_token_env: NW_TEST_TG, chat_id: '42', base_url: '{receiver.url}'}}",
        "  - {id: recurrence, detector: recurrence, channels: [sl, tg]}\n"
        "  - {id: spike, detector: spike, channels: [sl, tg]}",
    )
    with Outbox(tmp_path / "o.sqlite", cfg.outbox) as outbox:
        AlertEngine(cfg, outbox).process(events, NOW)
        dispatcher = Dispatcher(outbox, build_channels(cfg))
        receiver.fail_next = 2
        first = dispatcher.deliver_due(NOW)
        second = dispatcher.deliver_due(NOW + timedelta(days=1))
    assert first["retry"] == 2 and first["sent"] + second["sent"] == 4, (first, second)
    assert {r.path for r in receiver.accepted} == {SLACK_PATH, f"/bot{BOT_TOKEN}/sendMessage"}


def _assert_clean(text: str, receiver: WebhookReceiver) -> None:
    assert "outbox: sent" in text  # the deliveries were logged ...
    for secret in (
        BOT_TOKEN,
        BOT_TOKEN.split(":")[1],
        SLACK_PATH,
        "q8W3eR5tY7uI9oP1aS3dF5gH",
        receiver.url + SLACK_PATH,
    ):
        assert secret not in text  # ... without their secrets


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_delivery_at_debug_logs_no_secret(
    tmp_path: Path,
    events: list[DetectorEvent],
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
    log_sandbox: None,
    fmt: str,
) -> None:
    buf = io.StringIO()
    setup_logging("DEBUG", fmt, stream=buf)
    _deliver(tmp_path, events, receiver, monkeypatch)
    text = buf.getvalue()
    assert "failed (attempt 1)" in text  # the refused attempt was logged too
    _assert_clean(text, receiver)


@pytest.mark.timeout(60)
def test_mask_holds_when_httpx_logging_is_turned_up(
    tmp_path: Path,
    events: list[DetectorEvent],
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
    log_sandbox: None,
) -> None:
    buf = io.StringIO()
    setup_logging("DEBUG", "text", stream=buf)
    for name in ("httpx", "httpcore"):  # someone debugging a delivery turns them up
        logging.getLogger(name).setLevel(logging.DEBUG)
    _deliver(tmp_path, events, receiver, monkeypatch)
    text = buf.getvalue()
    assert "HTTP Request: POST" in text and f"/bot{MASK}/sendMessage" in text
    _assert_clean(text, receiver)


@pytest.mark.parametrize(
    ("raw", "kept", "gone"),
    [
        (
            f'HTTP Request: POST https://api.telegram.org/bot{BOT_TOKEN}/sendMessage "HTTP/1.1 200 OK"',
            "https://api.telegram.org/bot",
            BOT_TOKEN,
        ),
        (f"token {BOT_TOKEN} rejected", "token ", BOT_TOKEN),
        (
            "POST https://hooks.slack.com/services/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 -> 404",
            "https://hooks.slack.com/",
            "q8W3eR5tY7uI9oP1aS3dF5gH",
        ),
        ("slack token xoxb-1234567890-abcdefghijkl", "xoxb-", "abcdefghijkl"),
        ("connecting to https://elastic:s3cr3t-Pa55@127.0.0.1:9200/", "https://elastic:", "s3cr3t-Pa55"),
        ("headers={'Authorization': 'Bearer nwtok-abcdef123456'}", "'Authorization': '", "nwtok-abcdef123456"),
        ("Authorization: Basic ZWxhc3RpYzpzM2NyM3Q=", "Authorization: ", "ZWxhc3RpYzpzM2NyM3Q="),
        ('{"authorization": "ApiKey ZGVmOmFiYw=="}', '"authorization": "', "ZGVmOmFiYw=="),
        ("GET /feed?id=3&api_key=9f8e7d6c5b4a&x=1", "api_key=", "9f8e7d6c5b4a"),
        ("token nw_Q2hhbmdlTWVJbW1lZGlhdGVseVBsZWFzZTEyMzQ1Njc4OTA created", "nw_", "Q2hhbmdlTWVJbW1lZGlh"),
    ],
)
def test_known_secret_shapes_are_masked(raw: str, kept: str, gone: str) -> None:
    out = redact(raw)
    assert gone not in out and kept in out and MASK in out, out


def test_ordinary_log_lines_are_untouched() -> None:
    for line in (
        "outbox: sent a1b2c3 -> tg",
        "crawl tg123: fetched=20 indexed=18 drop.duplicate=2",
        "API and web UI on http://127.0.0.1:8765/",
        "fetch https://t.me/s/rian_ru?before=31353 -> 200",
        "authorization required: send a bearer token",
    ):
        assert redact(line) == line
