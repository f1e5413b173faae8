"""Progress for long steps (generation, judging), on stderr so stdout stays clean for data.

On a terminal: a rich bar. Elsewhere (nohup, CI, notebooks): one plain line, `label done/total,
rate, ETA`, at most every LINE_INTERVAL_S seconds (and a closing one if any was printed), so a long run is never silent."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Callable, Iterator, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)
LINE_INTERVAL_S = 30.0


class LineProgress:
    """Counts done items and prints a progress line when `interval_s` has passed since the last one."""

    def __init__(self, label: str, total: int, interval_s: float = LINE_INTERVAL_S, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.total, self.interval_s = label, total, interval_s
        self.stream = stream
        self.clock = clock
        self.done = 0
        self.lines = 0
        self.start = self.last = clock()

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.clock() - self.last >= self.interval_s:
            self.emit()

    def emit(self) -> None:
        now = self.clock()
        self.last = now
        self.lines += 1
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        eta = f"{(self.total - self.done) / rate:.0f}s" if rate > 0 else "?"
        print(f"{self.label}: {self.done}/{self.total} ({rate:.2f}/s, ETA {eta})",
              file=self.stream or sys.stderr, flush=True)


@contextlib.contextmanager
def bar(description: str, total: int, interval_s: float | None = None) -> Iterator[Callable[[int], None]]:
    """Yields advance(n): a bar on a terminal, else a line at most every `interval_s` (default LINE_INTERVAL_S)."""
    if total <= 0:
        yield lambda n=1: None
        return
    if not sys.stderr.isatty():
        line = LineProgress(description, total, LINE_INTERVAL_S if interval_s is None else interval_s)
        yield line.advance
        if line.lines and line.done > 0:  # a long step says when it finished; a short one stays quiet
            line.emit()
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console, transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)
