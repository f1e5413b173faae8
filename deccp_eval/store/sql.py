"""What the store's tables share: one timestamp format and chunked `IN (...)` queries."""

from __future__ import annotations

import itertools
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
