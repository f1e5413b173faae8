"""Progress for long steps (generation, judging), on stderr so stdout stays clean for data.

On a terminal: a rich bar. Elsewhere (nohup, CI, notebooks): one plain line, `label done/total
(answers/s, tokens/s, ETA)`, every LINE_INTERVAL_S seconds while the step runs, even inside one slow
batch (a timer thread), and a closing one if any was printed, so a long run is never silent and
says how fast it goes."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)
LINE_INTERVAL_S = 10.0


class Advance(Protocol):
    def __call__(self, n: int = 1, tokens: int = 0) -> None: ...


class LineProgress:
    """Counts done items (and generated tokens) and prints a progress line when `interval_s` has
    passed since the last one; `tick` lets a timer print one between items (a slow batch)."""

    def __init__(
        self,
        label: str,
        total: int,
        interval_s: float = LINE_INTERVAL_S,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        unit: str = "",
    ) -> None:
        self.label, self.total, self.interval_s, self.unit = label, total, interval_s, unit
        self.stream = stream
        self.clock = clock
        self.done = 0
        self.tokens = 0
        self.lines = 0
        self.start = self.last = clock()
        self._lock = threading.Lock()

    def advance(self, n: int = 1, tokens: int = 0) -> None:
        with self._lock:
            self.done += n
            self.tokens += tokens
        self.tick()

    def tick(self) -> None:
        if self.clock() - self.last >= self.interval_s:
            self.emit()

    def emit(self) -> None:
        with self._lock:
            now = self.clock()
            self.last = now
            self.lines += 1
            rate = speed(self.done, self.tokens, now - self.start, self.total, self.unit)
            print(f"{self.label}: {self.done}/{self.total} ({rate})", file=self.stream or sys.stderr, flush=True)


def speed(done: int, tokens: int, elapsed: float, total: int, unit: str = "") -> str:
    """`0.50 answers/s, 41.2 tokens/s, ETA 30s` (tokens only when counted)."""
    elapsed = max(elapsed, 1e-9)
    rate = done / elapsed
    eta = f"{(total - done) / rate:.0f}s" if rate > 0 else "?"
    per = f" {unit}/s" if unit else "/s"
    toks = f", {tokens / elapsed:.1f} tokens/s" if tokens else ""
    return f"{rate:.2f}{per}{toks}, ETA {eta}"


@contextlib.contextmanager
def _ticking(line: LineProgress) -> Iterator[None]:
    """A daemon timer that lets `line` print between items, so a slow batch is never silent."""
    stop = threading.Event()
    if line.interval_s <= 0:  # a line per item already
        yield
        return

    def loop() -> None:
        while not stop.wait(min(1.0, line.interval_s)):
            if line.done < line.total:
                line.tick()

    thread = threading.Thread(target=loop, name="progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=2)


@contextlib.contextmanager
def bar(description: str, total: int, interval_s: float | None = None, unit: str = "") -> Iterator[Advance]:
    """Yields advance(n, tokens=0): a bar on a terminal, else a line at least every `interval_s`
    (default LINE_INTERVAL_S) while the step runs; with tokens counted, tokens/s beside items/s."""
    if total <= 0:
        yield lambda n=1, tokens=0: None
        return
    if not sys.stderr.isatty():
        line = LineProgress(description, total, LINE_INTERVAL_S if interval_s is None else interval_s, unit=unit)
        with _ticking(line):
            yield line.advance
        if line.lines and line.done > 0:  # a long step says when it finished; a short one stays quiet
            line.emit()
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[speed]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(description, total=total, speed="")
        counted = {"done": 0, "tokens": 0}
        started = time.monotonic()

        def advance(n: int = 1, tokens: int = 0) -> None:
            counted["done"] += n
            counted["tokens"] += tokens
            rate = speed(counted["done"], counted["tokens"], time.monotonic() - started, total, unit)
            progress.update(task, advance=n, speed=rate.rsplit(", ETA", 1)[0])

        yield advance
