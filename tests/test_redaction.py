"""Redaction end to end: known secrets are seeded into the config and into the fakes' answers
(a provider echoing our token in an error); failing syncs then leave zero copies of them in
any log line, any printed report or any database row."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select

from core.db import open_database
from sandbox.server import Sandbox
from tests.conftest import sandbox_config, write_config
from tests.helpers import run_cli

PERIOD = "2026-10"
HOOK_PATH_SECRET = "whk-9d2c7e41b6"
SMTP_PASSWORD = "smtp-pw-5be81f0c"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _database_text(db_url: str) -> str:
    """Every row of every table, as text."""
    engine = open_database(db_url)
    meta = MetaData()
    meta.reflect(engine)
    parts: list[str] = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                parts.append(" | ".join(str(v) for v in row))
    return "\n".join(parts)


def test_secrets_never_reach_logs_output_or_the_database(
    sandbox: Sandbox, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    harvest_token = sandbox.harvest.settings.access_token
    xero_token = sandbox.xero.settings.access_token
    monkeypatch.setenv("HARVEST_ACCESS_TOKEN", harvest_token)
    monkeypatch.setenv("XERO_ACCESS_TOKEN", xero_token)
    port = _closed_port()
    monkeypatch.setenv("HB_WEBHOOK", f"http://127.0.0.1:{port}/services/T1/B1/{HOOK_PATH_SECRET}")
    monkeypatch.setenv("HB_SMTP_PASSWORD", SMTP_PASSWORD)
    data = sandbox_config(sandbox, db_url)
    data["profiles"]["agency-monthly"]["alerts"] = {
        "webhook_url": "${HB_WEBHOOK}",
        "email": {
            "host": "127.0.0.1",
            "port": port,
            "starttls": False,
            "username": "hourbridge",
            "password": "${HB_SMTP_PASSWORD}",
            "from": "hb@example.com",
            "to": ["ops@example.com"],
        },
    }
    config = write_config(tmp_path / "c.yaml", data)
    secrets = (harvest_token, xero_token, HOOK_PATH_SECRET, SMTP_PASSWORD)

    # 1. Harvest echoes our token in a transient error (retried), then in a 401 (fatal).
    sandbox.harvest.fail_next(503, retry_after=0, detail=f"overloaded; token={harvest_token}")
    sandbox.harvest.fail_next(401, detail=f"token {harvest_token} was revoked")
    first = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    # 2. Harvest answers; Xero echoes the bearer token in its 401 problem detail.
    sandbox.xero.fail_next(401, detail=f"Bearer {xero_token} is not valid")
    second = run_cli("sync", "--config", config, "--period", PERIOD, "--json")

    assert (first.code, second.code) == (1, 1)
    assert "auth" in first.json()["error_classes"] and first.json()["error_classes"]["auth"]
    assert second.json()["error_classes"]["auth"] == 1
    # the echoes reached us, and were masked where they would have been stored or shown
    assert "token *** was revoked" in first.json()["errors"][0]
    assert second.json()["errors"] == [
        "xero: HTTP 401: credentials refused: Bearer *** is not valid"
    ]
    shown = run_cli("runs", "show", first.json()["run_id"], "--config", config)
    listed = run_cli("runs", "list", "--config", config, "--json")
    status = run_cli("status", "--config", config, "--json")

    outputs = [first, second, shown, listed, status]
    logs = "\n".join(r.stderr for r in outputs)
    printed = "\n".join(r.stdout for r in outputs)
    assert "alert.failed" in logs  # deliveries failed, and their errors were logged
    stored = _database_text(db_url)
    assert "sync_runs" not in stored  # sanity: rows, not table names
    assert first.json()["run_id"] in stored and "webhook" in stored
    for secret in secrets:
        assert secret not in logs, secret
        assert secret not in printed, secret
        assert secret not in stored, secret
