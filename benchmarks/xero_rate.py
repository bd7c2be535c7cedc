"""Benchmark: 300 invoices into the fake Xero at its real limit of 60 calls a minute.

    .venv/bin/python benchmarks/xero_rate.py [--invoices 300] [--batch-size 1]

The fake runs with Xero's real per-tenant limits (60 a minute, 5 concurrent, 5,000 a day).
With one invoice per write (``--batch-size 1``, the worst case) the sync makes a few hundred
calls; our call budget waits on our side, so the fake should answer zero 429s. The floor is
the least time the limit allows for the calls made: with N calls in a sliding 60 s window,
ceil(N / 60) - 1 full windows. The target is a wall time within 1.2 times that floor.
Not run in CI: it takes several minutes by design.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from core import logging as hblog
from core.config import load_config
from core.db import open_database
from core.factory import build_profile
from core.http import CallCounter
from core.periods import Period
from core.sync import SyncEngine
from sandbox.harvest import HarvestSettings
from sandbox.seed import SeedSpec, build_agency_month
from sandbox.server import start_sandbox
from sandbox.xero import XeroSettings

ROOT = Path(__file__).resolve().parent.parent
PER_MINUTE = 60


def _spec_for(invoices: int) -> SeedSpec:
    """A seed with exactly ``invoices`` mapped clients (one invoice each)."""
    clients = invoices
    while True:
        spec = SeedSpec(clients=clients, entries=invoices * 30)
        month = build_agency_month(spec)
        mapped = len(month.clients) - len(month.unmapped_client_ids)
        if mapped == invoices:
            return spec
        clients += invoices - mapped


def _config(sandbox: Any, db: Path, batch_size: int) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "config.example.yaml").read_text("utf-8"))
    data["database"]["url"] = f"sqlite:///{db}"
    data["sources"]["harvest"]["base_url"] = sandbox.harvest_url
    data["targets"]["xero"]["base_url"] = sandbox.xero_url + "/api.xro/2.0"
    data["targets"]["xero"]["batch_size"] = batch_size
    mapping = data["profiles"]["agency-monthly"]["mapping"]
    mapping["projects"] = {}
    mapping["clients"] = {
        str(c["id"]): {
            "contact_number": f"HV-{c['id']}",
            "currency": c["currency"],
            "tax_type": "OUTPUT2" if c["currency"] == "NZD" else "ZERORATEDOUTPUT",
        }
        for c in sandbox.month.clients
        if c["id"] not in sandbox.month.unmapped_client_ids
    }
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=1)
    args = parser.parse_args(argv)

    spec = _spec_for(args.invoices)
    sandbox = start_sandbox(
        spec,
        harvest_settings=HarvestSettings(requests_per_window=100_000),
        xero_settings=XeroSettings(),  # the real limits: 60 a minute, 5,000 a day
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "bench.yaml"
            config.write_text(
                yaml.safe_dump(_config(sandbox, Path(tmp) / "hb.db", args.batch_size))
            )
            env = {
                "HARVEST_ACCESS_TOKEN": sandbox.harvest.settings.access_token,
                "XERO_ACCESS_TOKEN": sandbox.xero.settings.access_token,
            }
            loaded = load_config(config, env)
            hblog.configure(loaded.secrets, json=True)  # logs to stderr; the result to stdout
            calls = CallCounter()
            built = build_profile(loaded, None, calls)
            engine = open_database(loaded.database_url)
            started = time.monotonic()
            report = SyncEngine(engine, built, api_calls=calls.as_dict, counter=calls).run(
                Period.parse(spec.period)
            )
            wall = time.monotonic() - started
    finally:
        sandbox.stop()

    xero_calls = report.api_calls.get("xero", 0)
    throttled = report.api_rate_limited.get("xero", 0)
    floor = max(0, math.ceil(xero_calls / PER_MINUTE) - 1) * 60.0
    ratio = wall / floor if floor else float("nan")
    sys.stdout.write(
        f"status:            {report.status} ({'; '.join(report.errors) or 'no errors'})\n"
    )
    sys.stdout.write(f"invoices created:  {report.invoices_created}\n")
    sys.stdout.write(f"xero calls:        {xero_calls} (batch size {args.batch_size})\n")
    sys.stdout.write(f"429 answers:       {throttled}\n")
    sys.stdout.write(f"wall time:         {wall:.1f} s\n")
    sys.stdout.write(f"floor at {PER_MINUTE}/min:  {floor:.1f} s\n")
    sys.stdout.write(f"ratio:             {ratio:.3f} (target <= 1.2)\n")
    ok = report.status == "succeeded" and throttled == 0 and floor > 0 and ratio <= 1.2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
