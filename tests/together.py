"""Start test worker processes so that they act at the same instant: each says "ready" on
stdout and waits for a go file; the test touches it once every worker is ready."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ready_then_wait(go_file: str, limit: float = 60.0) -> None:
    """In a worker: say "ready", then wait (at most ``limit`` seconds) for the go file."""
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    go = Path(go_file)
    deadline = time.monotonic() + limit
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.002)


def run_together(command: list[str], go: Path, copies: int = 2) -> list[tuple[str, str]]:
    """Start ``copies`` of ``command``, wait until each is ready, touch ``go``, and return each
    one's (stdout after "ready", stderr); every copy must exit 0."""
    procs = [
        subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(copies)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        go.touch()
        outputs = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert [p.returncode for p in procs] == [0] * copies, [err[-2000:] for _o, err in outputs]
    return outputs
