"""The Channel contract, run against every registered channel kind (a new kind must add a profile).

Each kind is pointed at a loopback endpoint (tests/support/sinks.py: an HTTP receiver, an SMTP
sink) and must: deliver one alert built from real posts, acknowledged once; on a refused attempt
(503 / SMTP 451) leave the delivery for a retry after the outbox's backoff, then deliver it once;
and with its secret's environment variable unset be disabled with a message naming the variable
(``build_channels`` logs "disabled channel ..." and carries on), never crash.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.channels import CHANNEL_KINDS, ChannelDisabled, ChannelSettings
from alerts.config import AlertsConfig, OutboxSettings, build_channels
from alerts.outbox import Dispatcher, Outbox
from core.events import Alert, DetectorEvent
from monitors.detectors import build_detector
from monitors.store import MatchStore
from tests.support.sinks import SmtpSink, WebhookReceiver
from tests.support.timeline import load_posts, posts_to_matches

TIMELINE = Path(__file__).resolve().parents[1] / "data" / "alerts" / "telegram_timeline.jsonl"
NOW = datetime(2024, 11, 21, 18, tzinfo=UTC)
SECRET_VAR = "NW_CONTRACT_SECRET"
UNSET_VAR = "NW_CONTRACT_UNSET"


class Endpoint:
    """A loopback receiver seen the same way for HTTP and SMTP."""

    def __init__(self, http: WebhookReceiver | None = None, smtp: SmtpSink | None = None) -> None:
        self.http, self.smtp = http, smtp

    @property
    def url(self) -> str:
        assert self.http is not None
        return self.http.url

    @property
    def port(self) -> int:
        assert self.smtp is not None
        return self.smtp.port

    def received(self) -> int:
        return len(self.http.accepted) if self.http else len(self.smtp.messages) if self.smtp else 0

    def refuse_next(self) -> None:
        if self.http:
            self.http.fail_next = 1
        elif self.smtp:
            self.smtp.handler.fail_next = 1


@dataclass(frozen=True)
class Profile:
    """A kind's settings against an endpoint (``secret`` names the variable it needs) and the
    settings whose variable is unset."""

    smtp: bool
    settings: Callable[[Endpoint, str], dict[str, Any]]
    disabled: dict[str, Any]


PROFILES: dict[str, Profile] = {
    "webhook": Profile(
        False,
        lambda e, var: {"url": f"{e.url}/in", "secret_env": var},
        {"url_env": UNSET_VAR},
    ),
    "slack": Profile(False, lambda e, var: {"webhook_url_env": var}, {"webhook_url_env": UNSET_VAR}),
    "telegram": Profile(
        False,
        lambda e, var: {"bot_token_env": var, "chat_id": "42", "base_url": e.url},
        {"bot_token_env": UNSET_VAR, "chat_id": "42"},
    ),
    "email": Profile(
        True,
        lambda e, var: {
            "smtp_host": "127.0.0.1",
            "smtp_port": e.port,
            "security": "none",
            "from_addr": "nw@localhost",
            "to": ["analyst@localhost"],
        },
        {
            "smtp_host": "127.0.0.1",
            "username": "nw",
            "password_env": UNSET_VAR,
            "from_addr": "nw@localhost",
            "to": ["a@b.c"],
        },
    ),
}


def test_every_registered_channel_kind_has_a_profile() -> None:
    assert set(PROFILES) == set(CHANNEL_KINDS.names()), "add a contract profile for each new channel kind"


@pytest.fixture(params=CHANNEL_KINDS.names())
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture()
def endpoint(kind: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    monkeypatch.delenv(UNSET_VAR, raising=False)
    if PROFILES[kind].smtp:
        with SmtpSink() as smtp:
            yield Endpoint(smtp=smtp)
        return
    with WebhookReceiver() as http:
        # Slack's secret is its webhook URL; the others' secrets are a token or an HMAC key.
        monkeypatch.setenv(SECRET_VAR, f"{http.url}/services/T/B/x" if kind == "slack" else "123:contract")
        yield Endpoint(http=http)


def _settings(kind: str, extra: dict[str, Any]) -> ChannelSettings:
    model = CHANNEL_KINDS.get(kind).settings
    return model.model_validate({"id": f"c-{kind}", "kind": kind, **extra})


@pytest.fixture(scope="module")
def alert(tmp_path_factory: pytest.TempPathFactory) -> Alert:
    """One alert on the real 'Oreshnik' hour (recurrence over real Telegram posts)."""
    with MatchStore(tmp_path_factory.mktemp("m") / "matches.sqlite") as store:
        store.add(posts_to_matches(load_posts(TIMELINE)))
        (event,) = build_detector("recurrence", {}).detect(store, [], NOW, {"n-nuclear-threat": "Nuclear threat"})
    return _alert(event)


def _alert(event: DetectorEvent) -> Alert:
    return Alert(
        id=f"contract-{event.identity[:12]}",
        rule="contract",
        severity="warning",
        events=(event,),
        created=NOW,
        dedup_key=f"contract|{event.key}",
        title=event.title,
        summary=event.summary,
    )


def _dispatcher(tmp_path: Path, settings: ChannelSettings, alert: Alert) -> tuple[Outbox, Dispatcher]:
    channels = build_channels(AlertsConfig(channels=(settings,)))
    assert set(channels) == {settings.id}
    outbox = Outbox(tmp_path / "outbox.sqlite", OutboxSettings())
    assert outbox.enqueue(alert, [settings.id])
    return outbox, Dispatcher(outbox, channels)


def test_delivers_to_its_loopback_endpoint_once(kind: str, endpoint: Endpoint, tmp_path: Path, alert: Alert) -> None:
    outbox, dispatcher = _dispatcher(tmp_path, _settings(kind, PROFILES[kind].settings(endpoint, SECRET_VAR)), alert)
    with outbox:
        assert dispatcher.deliver_due(NOW)["sent"] == 1
        assert dispatcher.deliver_due(NOW + timedelta(days=1))["sent"] == 0
    assert endpoint.received() == 1


def test_refused_attempt_is_retried_after_backoff(kind: str, endpoint: Endpoint, tmp_path: Path, alert: Alert) -> None:
    outbox, dispatcher = _dispatcher(tmp_path, _settings(kind, PROFILES[kind].settings(endpoint, SECRET_VAR)), alert)
    endpoint.refuse_next()
    with outbox:
        assert dispatcher.deliver_due(NOW)["retry"] == 1
        (pending,) = outbox.deliveries(status="pending")
        assert pending.attempts == 1 and pending.next_attempt_at == NOW + OutboxSettings().backoff_base
        assert dispatcher.deliver_due(NOW + timedelta(seconds=1))["sent"] == 0  # still backing off
        assert endpoint.received() == 0
        assert dispatcher.deliver_due(pending.next_attempt_at)["sent"] == 1
    assert endpoint.received() == 1


def test_disabled_without_its_secret(kind: str, endpoint: Endpoint, caplog: pytest.LogCaptureFixture) -> None:
    settings = _settings(kind, PROFILES[kind].disabled)
    with pytest.raises(ChannelDisabled, match=UNSET_VAR):
        CHANNEL_KINDS.get(kind).build(settings)
    with caplog.at_level(logging.WARNING, logger="alerts.config"):
        assert build_channels(AlertsConfig(channels=(settings,))) == {}
    assert any(
        f"disabled channel {settings.id}" in r.getMessage() and UNSET_VAR in r.getMessage() for r in caplog.records
    )
