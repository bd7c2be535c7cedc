"""A process killed (SIGKILL) in the middle of pushing: the re-run completes without duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from sandbox.server import Sandbox
from tests.conftest import ROOT, sandbox_config, write_config
from tests.helpers import invoices_per_contact, live_invoices, quickbooks_config, run_cli

PERIOD = "2026-10"


@pytest.mark.slow
def test_sigkill_mid_push_then_rerun_gives_one_invoice_per_contact(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    data = sandbox_config(sandbox, db_url)
    data["targets"]["xero"]["batch_size"] = 10  # several writes, so the kill lands mid-push
    config = write_config(tmp_path / "c.yaml", data)
    env = {
        **os.environ,
        "HARVEST_ACCESS_TOKEN": sandbox.harvest.settings.access_token,
        "XERO_ACCESS_TOKEN": sandbox.xero.settings.access_token,
    }
    release = sandbox.xero.hold_after_commit()
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "sync", "--config", str(config), "--period", PERIOD],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert sandbox.xero.committed.wait(90), "the first batch never reached the fake"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    committed_before = len(live_invoices(sandbox.xero.invoices))
    assert committed_before == 10  # the held batch was committed; nothing after it was sent

    for name in ("HARVEST_ACCESS_TOKEN", "XERO_ACCESS_TOKEN"):
        os.environ[name] = env[name]
    try:
        rerun = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    finally:
        for name in ("HARVEST_ACCESS_TOKEN", "XERO_ACCESS_TOKEN"):
            os.environ.pop(name, None)
    assert rerun.code == 0, rerun.stderr
    report = rerun.json()
    invoices = live_invoices(sandbox.xero.invoices)
    per_slot = invoices_per_contact(sandbox.xero.invoices)
    assert max(per_slot.values()) == 1
    expected_slots = len(sandbox.month.clients) - len(sandbox.month.unmapped_client_ids)
    assert len(invoices) == expected_slots
    assert report["invoices_created"] == expected_slots - committed_before
    assert report["invoices_unchanged"] == committed_before


@pytest.mark.slow
def test_sigkill_mid_push_into_quickbooks_then_rerun(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "qbo.yaml", quickbooks_config(sandbox, db_url))
    env = {
        **os.environ,
        "HARVEST_ACCESS_TOKEN": sandbox.harvest.settings.access_token,
        "QUICKBOOKS_ACCESS_TOKEN": sandbox.quickbooks.settings.access_token,
    }
    release = sandbox.quickbooks.hold_after_commit()
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "sync", "--config", str(config), "--period", PERIOD],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert sandbox.quickbooks.committed.wait(90), "no invoice reached the fake"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert len(sandbox.quickbooks.invoices) == 1  # committed, never confirmed

    for name in ("HARVEST_ACCESS_TOKEN", "QUICKBOOKS_ACCESS_TOKEN"):
        os.environ[name] = env[name]
    try:
        rerun = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    finally:
        for name in ("HARVEST_ACCESS_TOKEN", "QUICKBOOKS_ACCESS_TOKEN"):
            os.environ.pop(name, None)
    assert rerun.code == 0, rerun.stdout
    per_customer = Counter(
        inv["CustomerRef"]["value"] for inv in sandbox.quickbooks.invoices.values()
    )
    expected = len(sandbox.month.clients) - len(sandbox.month.unmapped_client_ids)
    assert len(per_customer) == expected and max(per_customer.values()) == 1
    assert rerun.json()["invoices_created"] == expected - 1
