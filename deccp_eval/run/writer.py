"""AnswerWriter: stores answers from a thread with its own connection, many per transaction.

A commit per answer cost about as much CPU as the answer's whole HTTP round trip at 32 requests in
flight. Here the caller's thread only builds the row; the writer commits whatever arrived within
`linger_s` together with those keys' lease releases. So an answer waits at most `linger_s` plus
one write before it is durable: a SIGKILL loses at most that much (the keys' leases die with the
process and a rerun sends them again; nothing is stored twice, the keys are unique).
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Any

from deccp_eval.base.schema import Request, Response
from deccp_eval.store.db import Store, response_row


class AnswerWriter:
    """`put` from one thread; `flush` waits until everything put is committed. An error in the
    writer (disk full, a locked store past its timeout) is raised in the caller's next put or flush."""

    def __init__(self, path: str | Path, replace: bool = False, linger_s: float = 0.05, max_rows: int = 512) -> None:
        self.path = path
        self.replace = replace
        self.linger_s = linger_s
        self.max_rows = max_rows
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="deccp-answer-writer", daemon=True)
        self._thread.start()

    def put(self, request: Request, dataset: str, response: Response) -> None:
        self._raise()
        self._queue.put(response_row(request, dataset, response))

    def flush(self) -> None:
        done = threading.Event()
        self._queue.put(done)
        while not done.wait(0.5):
            if not self._thread.is_alive():
                break
        self._raise()

    def close(self) -> None:
        """Flush and stop the thread (always call it: on errors too, so stored answers are kept)."""
        try:
            self.flush()
        finally:
            self._queue.put(None)
            self._thread.join(timeout=30)

    def __enter__(self) -> AnswerWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _loop(self) -> None:
        store = None
        try:
            store = Store(self.path)
            while True:
                item = self._queue.get()
                rows: list[tuple[Any, ...]] = []
                marks: list[threading.Event] = []
                stop = False
                deadline = time.monotonic() + self.linger_s
                while True:
                    if item is None:
                        stop = True
                        break
                    if isinstance(item, threading.Event):
                        marks.append(item)
                        break  # a flush: write now
                    rows.append(item)
                    left = deadline - time.monotonic()
                    if len(rows) >= self.max_rows or left <= 0:
                        break
                    try:
                        item = self._queue.get(timeout=left)
                    except queue.Empty:
                        break
                if rows:
                    try:
                        store.write_response_rows(rows, self.replace)
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                        self._error = exc
                for mark in marks:
                    mark.set()
                if stop:
                    return
        except BaseException as exc:  # noqa: BLE001 - opening the store failed
            self._error = exc
        finally:
            if store is not None:
                store.close()
