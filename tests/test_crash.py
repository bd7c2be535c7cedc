"""A process killed (SIGKILL) in the middle of pushing: the re-run completes without duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from sandbox.server import Sandbox
from tests.conftest import ROOT, sandbox_config, write_config
from tests.helpers import (
    CliResult,
    invoices_per_contact,
    live_invoices,
    quickbooks_config,
    run_cli,
)

PERIOD = "2026-10"


def kill_mid_push(
    config: Path,
    env: dict[str, str],
    committed: threading.Event,
    release: threading.Event,
    monkeypatch: pytest.MonkeyPatch,
) -> CliResult:
    """Run `hourbridge sync` in a subprocess, SIGKILL it once the fake committed a write
    (and is holding its answer), then re-run the same sync in-process."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "sync", "--config", str(config), "--period", PERIOD],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert committed.wait(90), "no write reached the fake"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return run_cli("sync", "--config", config, "--period", PERIOD, "--json")


@pytest.mark.slow
def test_sigkill_mid_push_then_rerun_gives_one_invoice_per_contact(
    sandbox: Sandbox, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = sandbox_config(sandbox, db_url)
    data["targets"]["xero"]["batch_size"] = 10  # several writes, so the kill lands mid-push
    config = write_config(tmp_path / "c.yaml", data)
    env = {
        "HARVEST_ACCESS_TOKEN": sandbox.harvest.settings.access_token,
        "XERO_ACCESS_TOKEN": sandbox.xero.settings.access_token,
    }
    release = sandbox.xero.hold_after_commit()
    committed_before: list[int] = []

    def count_when_committed() -> None:
        sandbox.xero.committed.wait(90)
        committed_before.append(len(live_invoices(sandbox.xero.invoices)))

    watcher = threading.Thread(target=count_when_committed)
    watcher.start()
    rerun = kill_mid_push(config, env, sandbox.xero.committed, release, monkeypatch)
    watcher.join(timeout=5)
    assert committed_before == [10]  # the held batch was committed; nothing after it was sent

    assert rerun.code == 0, rerun.stderr
    report = rerun.json()
    invoices = live_invoices(sandbox.xero.invoices)
    assert max(invoices_per_contact(sandbox.xero.invoices).values()) == 1
    expected_slots = len(sandbox.month.clients) - len(sandbox.month.unmapped_client_ids)
    assert len(invoices) == expected_slots
    assert report["invoices_created"] == expected_slots - 10
    assert report["invoices_unchanged"] == 10


@pytest.mark.slow
def test_sigkill_mid_push_into_quickbooks_then_rerun(
    sandbox: Sandbox, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "qbo.yaml", quickbooks_config(sandbox, db_url))
    env = {
        "HARVEST_ACCESS_TOKEN": sandbox.harvest.settings.access_token,
        "QUICKBOOKS_ACCESS_TOKEN": sandbox.quickbooks.settings.access_token,
    }
    release = sandbox.quickbooks.hold_after_commit()
    rerun = kill_mid_push(config, env, sandbox.quickbooks.committed, release, monkeypatch)

    assert rerun.code == 0, rerun.stdout
    per_customer = Counter(
        inv["CustomerRef"]["value"] for inv in sandbox.quickbooks.invoices.values()
    )
    expected = len(sandbox.month.clients) - len(sandbox.month.unmapped_client_ids)
    assert len(per_customer) == expected and max(per_customer.values()) == 1
    assert rerun.json()["invoices_created"] == expected - 1  # the killed one was found by key
