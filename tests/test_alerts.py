"""Alerts end to end: a real local SMTP server (aiosmtpd) and a local HTTP receiver get one
message per failed run, with the run id and the command to see more; a clean run sends none."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlmodel import Session as DbSession
from sqlmodel import select

from core import logging as hblog
from core.alerts import alert_after_run, build_alert, money_waiting
from core.config import HourbridgeConfig, load_config
from core.db import open_database
from core.opsconfig import AlertsConfig, ServeConfig
from core.report import RunReport
from core.secrets import substitute
from core.tables import AlertRow
from sandbox.server import Sandbox
from tests.conftest import ROOT, sandbox_config, write_config
from tests.helpers import run_cli

PERIOD = "2026-10"
HOOK_SECRET = "hook-secret-7f3a9c"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Inbox:
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802  (aiosmtpd's hook name)
        assert isinstance(envelope.content, bytes)
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@dataclass
class Receiver:
    port: int
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    receiver = Receiver(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.posts.append((self.path, json.loads(body)))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Channels:
    inbox: Inbox
    smtp_port: int
    webhook: Receiver


@pytest.fixture
def channels(smtp: tuple[Inbox, int], webhook: Receiver) -> Channels:
    return Channels(smtp[0], smtp[1], webhook)


def _config(
    sandbox: Sandbox,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    webhook_port: int,
    smtp_port: int,
    bad_tax: bool = False,
) -> Path:
    data = sandbox_config(sandbox, db_url)
    profile = data["profiles"]["agency-monthly"]
    profile["alerts"] = {
        "webhook_url": "${HB_WEBHOOK_URL}",
        "email": {
            "host": "127.0.0.1",
            "port": smtp_port,
            "starttls": False,
            "from": "hourbridge@example.com",
            "to": ["finance@example.com", "ops@example.com"],
        },
    }
    if bad_tax:
        profile["mapping"]["clients"]["5000001"]["tax_type"] = "NOSUCHTAX"
    monkeypatch.setenv(
        "HB_WEBHOOK_URL", f"http://127.0.0.1:{webhook_port}/services/T0/B0/{HOOK_SECRET}"
    )
    return write_config(tmp_path / "c.yaml", data)


def _alert_rows(db_url: str) -> list[AlertRow]:
    with DbSession(open_database(db_url)) as session:
        return list(session.exec(select(AlertRow)).all())


def test_a_failed_run_sends_one_alert_to_each_channel(
    sandbox: Sandbox,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    channels: Channels,
) -> None:
    inbox, smtp_port, webhook = channels.inbox, channels.smtp_port, channels.webhook
    monkeypatch.setenv("HARVEST_ACCESS_TOKEN", "wrong-token-abc")
    monkeypatch.setenv("XERO_ACCESS_TOKEN", sandbox.xero.settings.access_token)
    config = _config(
        sandbox, db_url, tmp_path, monkeypatch, webhook_port=webhook.port, smtp_port=smtp_port
    )
    result = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert result.code == 1
    run_id = result.json()["run_id"]
    command = f"hourbridge runs show {run_id} --config {config.resolve()}"

    assert len(webhook.posts) == 1
    path, body = webhook.posts[0]
    assert path.endswith(HOOK_SECRET)
    text = body["text"]
    assert run_id in text and command in text
    assert "failed" in text and "re-authorised" in text

    assert len(inbox.messages) == 1
    mail = inbox.messages[0]
    assert run_id in str(mail["Subject"])
    assert mail["To"] == "finance@example.com, ops@example.com"
    payload = mail.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert command in payload.decode()
    for secret in ("wrong-token-abc", sandbox.xero.settings.access_token, HOOK_SECRET):
        assert secret not in text and secret not in payload.decode()

    rows = _alert_rows(db_url)
    assert sorted((r.channel, r.run_id, r.delivered) for r in rows) == [
        ("email", run_id, True),
        ("webhook", run_id, True),
    ]
    assert all(r.reasons == "failed,reauthorise" for r in rows)

    # the same run never alerts twice, even if the hook runs again
    loaded = load_config(config)
    hblog.configure(loaded.secrets, json=True)  # the CLI's stderr is gone: log to ours
    report = RunReport.from_json(json.dumps(result.json()))
    assert alert_after_run(loaded, open_database(db_url), report) == []
    assert len(webhook.posts) == 1 and len(inbox.messages) == 1


@pytest.mark.usefixtures("tokens")
def test_a_partial_run_alerts_with_the_money_waiting_and_a_clean_run_does_not(
    sandbox: Sandbox,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    channels: Channels,
) -> None:
    inbox, smtp_port, webhook = channels.inbox, channels.smtp_port, channels.webhook
    ports = (webhook.port, smtp_port)
    config = _config(
        sandbox,
        db_url,
        tmp_path,
        monkeypatch,
        webhook_port=ports[0],
        smtp_port=ports[1],
        bad_tax=True,
    )
    partial = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert partial.code == 1
    report = partial.json()
    assert report["status"] == "partial"
    assert len(webhook.posts) == 1 and len(inbox.messages) == 1
    text = webhook.posts[0][1]["text"]
    assert report["run_id"] in text and "partly failed" in text
    waiting = money_waiting(RunReport.from_json(partial.stdout))
    assert waiting, "a rejected invoice and unmapped clients leave money waiting"
    for currency, amount in waiting.items():
        assert f"{currency} {amount:,.2f}" in text

    # fixed config: the run is clean (unmapped clients are new, not yet overdue), no alert
    clean_config = _config(
        sandbox, db_url, tmp_path, monkeypatch, webhook_port=ports[0], smtp_port=ports[1]
    )
    clean = run_cli("sync", "--config", clean_config, "--period", PERIOD, "--json")
    assert clean.code == 0, clean.stderr
    assert clean.json()["status"] == "succeeded"
    assert len(webhook.posts) == 1 and len(inbox.messages) == 1
    assert {r.run_id for r in _alert_rows(db_url)} == {report["run_id"]}

    # eight days later the same unmapped clients are overdue: one alert names them
    loaded = load_config(clean_config)
    hblog.configure(loaded.secrets, json=True)  # the CLI's stderr is gone: log to ours
    later = datetime.now(UTC) + timedelta(days=8)
    again = RunReport.from_json(clean.stdout)
    sent = alert_after_run(loaded, open_database(db_url), again, clock=lambda: later)
    assert [d.delivered for d in sent] == [True, True]
    overdue = webhook.posts[-1][1]["text"]
    assert "waited more than 7 days for a mapping" in overdue
    assert all(u["what"] in overdue for u in clean.json()["unmapped"])


@pytest.mark.usefixtures("tokens")
def test_a_failed_delivery_is_recorded_redacted_and_never_fails_the_run(
    sandbox: Sandbox, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = _free_port()  # nothing listens here
    config = _config(
        sandbox, db_url, tmp_path, monkeypatch, webhook_port=closed, smtp_port=closed, bad_tax=True
    )
    result = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert result.code == 1 and result.json()["status"] == "partial"
    rows = _alert_rows(db_url)
    assert sorted(r.channel for r in rows) == ["email", "webhook"]
    assert all(not r.delivered and r.error for r in rows)
    assert all(HOOK_SECRET not in (r.error or "") for r in rows)
    assert HOOK_SECRET not in result.stderr
    assert "alert.failed" in result.stderr


def test_build_alert_stays_quiet_for_clean_dry_and_lease_lost_runs() -> None:
    settings = AlertsConfig.model_validate({"webhook_url": "https://hooks.example.com/x"})
    here = Path("/etc/hb.yaml")
    clean = RunReport(run_id="r1", profile="p", period=PERIOD, dry_run=False, status="succeeded")
    assert build_alert(clean, settings, config_path=here) is None
    dry = RunReport(run_id="r2", profile="p", period=PERIOD, dry_run=True, status="failed")
    assert build_alert(dry, settings, config_path=here) is None
    lost = RunReport(run_id="r3", profile="p", period=PERIOD, dry_run=False, status="failed")
    lost.errors.append("profile 'p' is being synced by host:1:abc until 2026-11-01 00:00:00 UTC")
    assert build_alert(lost, settings, config_path=here) is None
    broken = RunReport(run_id="r4", profile="p", period=PERIOD, dry_run=False, status="failed")
    broken.errors.append("xero: HTTP 500: boom")
    alert = build_alert(broken, settings, config_path=here)
    assert alert is not None
    assert alert.text.splitlines()[-1] == "See more: hourbridge runs show r4 --config /etc/hb.yaml"
    assert "Money waiting: none" in alert.text


@pytest.mark.parametrize(
    ("alerts", "needle"),
    [
        ({"webhook_url": "https://hooks.slack.com/services/T/B/literal"}, "literal secrets"),
        ({"on_partial": True}, "give webhook_url, email, or both"),
        (
            {"email": {"host": "h", "from": "a@b.c", "to": [], "port": 25}},
            "alerts.email.to",
        ),
        (
            {"email": {"host": "h", "from": "a@b.c", "to": ["x@y.z"], "username": "u"}},
            "username and password",
        ),
    ],
)
@pytest.mark.usefixtures("tokens")
def test_bad_alert_config_is_one_line_naming_the_key(
    sandbox: Sandbox, tmp_path: Path, alerts: dict[str, Any], needle: str
) -> None:
    data = sandbox_config(sandbox, f"sqlite:///{tmp_path / 'hb.db'}")
    data["profiles"]["agency-monthly"]["alerts"] = alerts
    config = write_config(tmp_path / "c.yaml", data)
    result = run_cli("config", "check", "--config", config)
    assert result.code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert "profiles.agency-monthly.alerts" in lines[0]


def _commented_block(marker: str, indent: str) -> dict[str, Any]:
    """The YAML of a commented-out block of config.example.yaml, starting at ``marker``."""
    lines = (ROOT / "config.example.yaml").read_text(encoding="utf-8").splitlines()
    start = lines.index(marker)
    block = []
    for line in lines[start + 1 :]:
        if not line.startswith(indent):
            break
        block.append(line[len(indent) :])
    raw = yaml.safe_load("\n".join(block))
    assert isinstance(raw, dict)
    return raw


def test_the_commented_alerts_serve_and_retention_examples_are_valid() -> None:
    env = {"SLACK_WEBHOOK_URL": "https://hooks.example.com/x", "SMTP_PASSWORD": "pw"}
    alerts = substitute(_commented_block("    # alerts:", "    #   "), env, set())
    parsed = AlertsConfig.model_validate(alerts)
    assert parsed.email is not None and parsed.email.to == ["finance@example.com"]
    assert parsed.unmapped_after_days == 7
    serve = ServeConfig.model_validate(_commented_block("# serve:", "#   "))
    assert (serve.host, serve.port) == ("127.0.0.1", 9464)
    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    assert "\n# retention_days: 90\n" in text
    assert HourbridgeConfig.model_fields["retention_days"].default == 90
