"""Showing a sync's progress: rich bars on a terminal, log lines elsewhere (under the scheduler,
in CI, piped). Both consume core.sync's ProgressEvent; the engine itself knows nothing of rich.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

import structlog
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from core.sync import ProgressEvent, Stage

LABELS = {Stage.PULL: "pulling", Stage.MAP: "mapping", Stage.PUSH: "pushing"}


class LogProgress:
    """Progress as structured log lines: each stage's start and end, and every ``every``
    items in between, so a long run shows it is alive without flooding the log."""

    def __init__(self, logger: structlog.typing.FilteringBoundLogger, every: int = 500) -> None:
        self._log = logger
        self._every = every

    def __call__(self, event: ProgressEvent) -> None:
        if event.done == 0 or event.final or event.done % self._every == 0:
            self._log.info(
                "sync.progress",
                stage=event.stage.value,
                done=event.done,
                total=event.total,
                source=event.detail or None,
                final=event.final,
            )


class RichProgress:
    """Progress bars on a terminal: one per stage (and per source when pulling)."""

    def __init__(self, console: Console) -> None:
        self._bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[tuple[Stage, str], TaskID] = {}

    def __enter__(self) -> RichProgress:
        self._bars.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bars.stop()

    def __call__(self, event: ProgressEvent) -> None:
        key = (event.stage, event.detail)
        task = self._tasks.get(key)
        if task is None:
            label = LABELS[event.stage] + (f" {event.detail}" if event.detail else "")
            task = self._bars.add_task(label, total=event.total)
            self._tasks[key] = task
        self._bars.update(task, completed=event.done, total=event.total)


@contextmanager
def terminal_or_log(
    console: Console, logger: structlog.typing.FilteringBoundLogger
) -> Iterator[LogProgress | RichProgress]:
    """Bars when ``console`` is a terminal, log lines otherwise."""
    if console.is_terminal:
        with RichProgress(console) as bars:
            yield bars
    else:
        yield LogProgress(logger)
