"""A CPU-heavy step run in a forked child while this process goes on (the report's plots, the
leaderboard's facts matching): the inputs are final when it starts, the result is small."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

T = TypeVar("T")
_UNSET: Any = object()


class Forked(Generic[T]):
    """`fn(*args)` in a forked process, started now; `result()` waits for it. Where fork is missing
    or unsafe (another thread running: the child could inherit a held lock), or the child fails
    (an exception, or it died), `result` calls `fn(*args)` here: the same value, and an error raised
    as it would be without the child."""

    def __init__(self, fn: Callable[..., T], *args: Any) -> None:
        self._fn, self._args = fn, args
        self._value: T = _UNSET
        self._conn: Connection | None = None
        self._child: BaseProcess | None = None
        import multiprocessing

        if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
            ctx = multiprocessing.get_context("fork")
            self._conn, child_end = ctx.Pipe(duplex=False)
            try:
                self._child = ctx.Process(target=_run, args=(fn, args, child_end), daemon=True)
                self._child.start()
            except (AssertionError, OSError):  # a daemonic process may have no children; out of processes
                self._conn.close()
                self._conn = self._child = None
            child_end.close()

    def result(self) -> T:
        if self._value is _UNSET:
            sent = None
            if self._conn is not None and self._child is not None:
                try:
                    sent = self._conn.recv()
                except EOFError:  # the child died before sending
                    pass
                finally:
                    self._conn.close()
                    self._child.join()
                self._conn = self._child = None
            self._value = sent[0] if sent is not None else self._fn(*self._args)
        return self._value


def _run(fn: Callable[..., Any], args: tuple[Any, ...], conn: Connection) -> None:
    """The child: `(fn(*args),)` down the pipe, or None on any error (the parent then calls it itself)."""
    import gc

    gc.freeze()  # the parent's objects are never collected here: no copy-on-write of its whole heap
    try:
        sent: tuple[Any] | None = (fn(*args),)
    except Exception:
        sent = None
    try:
        conn.send(sent)
    except Exception:  # the parent stopped waiting (it failed on its side), or the value would not pickle
        pass
    conn.close()
