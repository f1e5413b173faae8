"""What the store's tables share: one timestamp format, chunked `IN (...)` queries, and how a
connection turns on WAL."""

from __future__ import annotations

import itertools
import random
import sqlite3
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone


def now() -> str:
    """Microsecond ISO time in UTC: every table's timestamps sort in the order they were written, even
    within one second (a review edit made in the same second as the reference it replaces is newer)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def in_chunks(keys: Iterable[str], size: int = 500) -> Iterator[tuple[str, list[str]]]:
    """(`?,?,...` placeholders, keys) per chunk, so an `IN (...)` query stays under SQLite's variable limit."""
    it = iter(keys)
    while chunk := list(itertools.islice(it, size)):  # lazy: a caller may stop after the first chunks
        yield ",".join("?" * len(chunk)), chunk


def use_wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    """Turn on WAL, waiting out other processes for up to `timeout_s`. SQLite answers "database is
    locked" at once, without its busy handler, when another connection is creating the file or
    closing it: three `run` processes started together on a fresh store failed that way."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))  # jittered: the processes that collided do not collide again
