"""`hourbridge sandbox` serves both fakes in the foreground and stops cleanly on SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import requests

from tests.conftest import ROOT


def test_sandbox_command_serves_the_fakes_until_terminated() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "core.cli",
            "sandbox",
            "--harvest-port",
            "0",
            "--xero-port",
            "0",
            "--quickbooks-port",
            "0",
            "--toggl-port",
            "0",
            "--clockify-port",
            "0",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line.strip())
            if line.strip() == "ready":
                break
        text = "\n".join(lines)
        harvest = re.search(r"fake Harvest: (http://127\.0\.0\.1:\d+)", text)
        xero = re.search(r"fake Xero:\s+(http://127\.0\.0\.1:\d+)", text)
        assert harvest and xero, text
        assert "export HARVEST_ACCESS_TOKEN=" in text
        for fake in ("QuickBooks", "Toggl", "Clockify"):
            assert f"fake {fake}:" in text
        answer = requests.get(f"{harvest.group(1)}/v2/time_entries", timeout=5)
        assert answer.status_code == 401  # it is strict: no token, no data
        answer = requests.get(f"{xero.group(1)}/api.xro/2.0/Invoices", timeout=5)
        assert answer.status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert proc.returncode == 0
