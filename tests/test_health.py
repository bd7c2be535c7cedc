"""`hourbridge serve` answers /healthz and /metrics over HTTP on 127.0.0.1 by default."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from core import logging as hblog
from core.config import load_config
from core.opsconfig import ServeConfig
from sandbox.server import Sandbox
from scheduler.health import health
from scheduler.service import serve
from tests.conftest import example_config, sandbox_config, write_config
from tests.helpers import run_cli


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.fixture
def served(
    sandbox: Sandbox, db_url: str, tmp_path: Path, tokens: None
) -> Iterator[tuple[str, Path, list[str]]]:
    data = sandbox_config(sandbox, db_url)
    data["profiles"]["agency-monthly"]["schedule"] = {"cron": "0 6 1 1 *"}
    config = write_config(tmp_path / "c.yaml", data)
    loaded = load_config(config)
    hblog.configure(loaded.secrets, json=True)
    lines: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=serve,
        args=(loaded,),
        kwargs={
            "run_at_start": True,
            "stop": stop,
            "echo": lines.append,
            "endpoint": ServeConfig(port=0),
        },
    )
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not any(line.startswith("health: ") for line in lines):
            assert time.monotonic() < deadline and thread.is_alive(), lines
            time.sleep(0.05)
        url = next(line for line in lines if line.startswith("health: ")).split()[1]
        yield url.removesuffix("/healthz"), config, lines
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive()


def _wait_for_run(base: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        body: dict[str, Any] = requests.get(f"{base}/healthz", timeout=5).json()
        last = body["profiles"]["agency-monthly"]["last_run"]
        if last is not None and last["status"] != "running":
            return body
        time.sleep(0.2)
    raise AssertionError("no run finished")


def test_healthz_and_metrics_over_http(served: tuple[str, Path, list[str]]) -> None:
    base, config, _lines = served
    assert base.startswith("http://127.0.0.1:")
    body = _wait_for_run(base)
    answer = requests.get(f"{base}/healthz", timeout=5)
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"
    assert body["scheduler"] == {"alive": True}
    assert body["database"] == {"reachable": True, "error": None}
    profile = body["profiles"]["agency-monthly"]
    assert profile["last_run"]["status"] == "succeeded"
    assert profile["last_run"]["trigger"] == "schedule"
    assert "-01-01T06:00:00+13:00" in profile["next_run"]  # 06:00 on 1 January, Auckland

    report = run_cli("runs", "show", profile["last_run"]["run_id"], "--config", config, "--json")
    run = report.json()
    hblog.configure(json=True)  # the CLI run pointed the logs at its own, now closed, stderr
    # the run is over once it is saved; its counters follow right after
    deadline = time.monotonic() + 10
    while True:
        metrics = requests.get(f"{base}/metrics", timeout=5)
        samples = _samples(metrics.text)
        runs = samples.get(
            ("hourbridge_runs_total", (("profile", "agency-monthly"), ("status", "succeeded")))
        )
        if runs == 1.0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert metrics.status_code == 200
    assert runs == 1.0
    assert (
        samples[("hourbridge_entries_billed_total", (("profile", "agency-monthly"),))]
        == (run["entries_billed"])
    )
    created = (("action", "create"), ("profile", "agency-monthly"))
    assert samples[("hourbridge_invoices_pushed_total", created)] == run["invoices_created"] > 0
    for provider, count in run["api_calls"].items():
        assert samples[("hourbridge_api_calls_total", (("provider", provider),))] == count
    assert ("hourbridge_api_retries_total", (("provider", "xero"),)) not in samples
    age = samples[("hourbridge_oldest_pending_entry_age_seconds", ())]
    assert age >= 0  # unmapped clients' entries wait on no invoice
    last = samples[
        (
            "hourbridge_last_run_timestamp_seconds",
            (("profile", "agency-monthly"), ("status", "succeeded")),
        )
    ]
    assert abs(last - time.time()) < 600
    assert requests.get(f"{base}/nope", timeout=5).status_code == 404


def test_unreachable_database_or_stopped_scheduler_is_503() -> None:
    down = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")
    code, body = health(down, True, {"p": None})
    assert code == 503
    assert body["status"] == "unhealthy" and body["database"]["reachable"] is False
    assert body["profiles"] == {"p": {"last_run": None, "next_run": None}}
    sqlite = create_engine("sqlite://")
    code, body = health(sqlite, False, {})
    assert code == 503 and body["scheduler"] == {"alive": False}
    assert body["database"]["reachable"] is True


def test_a_non_loopback_endpoint_is_refused_unless_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARVEST_ACCESS_TOKEN", "h-secret")
    monkeypatch.setenv("XERO_ACCESS_TOKEN", "x-secret")
    data = example_config()
    data["profiles"]["agency-monthly"]["schedule"] = {"cron": "0 6 1 1 *"}
    config = write_config(tmp_path / "c.yaml", data)
    result = run_cli("serve", "--config", config, "--host", "0.0.0.0")
    assert result.code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--host" in lines[0] and "allow_remote" in lines[0]

    data["serve"] = {"host": "10.1.2.3"}
    write_config(config, data)
    checked = run_cli("config", "check", "--config", config)
    assert checked.code == 2 and "serve: " in checked.stderr and "allow_remote" in checked.stderr
    data["serve"] = {"host": "10.1.2.3", "allow_remote": True, "port": 9999}
    write_config(config, data)
    assert run_cli("config", "check", "--config", config).code == 0
    assert ServeConfig().host == "127.0.0.1"
