"""Stopping on SIGTERM or SIGINT after the batch in flight.

The first signal only sets an event. The sync engine (``SyncEngine(stop=...)``) checks it at
safe points: between sources, before the push, and between the target's batches. The run
then ends ``interrupted``, with every result of the batch in flight recorded in the ledger and
every invoice not sent left for the next run; its lease is released. A second signal acts as
it would have without us (SIGINT raises KeyboardInterrupt, SIGTERM ends the process), so an
operator can still force an exit.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

StopCheck = Callable[[], bool]  # True once a stop was asked


def never() -> bool:
    """The default: no stop is ever asked."""
    return False


@contextmanager
def stop_on_signals(stop: threading.Event, notice: str | None = None) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT set ``stop`` (and print ``notice`` on stderr, if
    given); a second signal acts as it would have (SIGINT raises KeyboardInterrupt), so an
    operator can still force an exit."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def handler(signum: int, frame: FrameType | None) -> None:
        # No logging here: the main thread may hold the log's write lock when a signal lands.
        # A bare write to the file descriptor takes no lock.
        stop.set()
        restore()
        if notice is not None:
            with suppress(OSError):  # stderr closed: the run's report says it all anyway
                os.write(2, (notice + "\n").encode())

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        restore()
