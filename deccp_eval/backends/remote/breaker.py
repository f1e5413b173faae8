"""Breaker: tells a dead endpoint from a flaky one, so a run stops in seconds instead of retrying
every request for minutes and storing an error row for each.

- Nothing answered yet and a request never reached a server (connection refused, DNS, TLS): the
  URL is wrong or the server is down. Stop at once; retrying cannot help.
- Answers came and then every request fails: an outage. Unreachable faults, 5xx, timeouts and
  dropped connections (429 aside: the server is alive and pacing us) are retried as usual, and a
  request that runs out of attempts while others fail too (and requests remain to be sent)
  keeps waiting instead of becoming an error row. One that fails while requests sent after it get
  answers is the prompt's own problem: it runs out of attempts and is stored as an error, as before.
  When nothing has succeeded for `unreachable_s` (every failure unreachable) or `outage_s` (any
  other mix), the run stops; a rerun resumes with what was stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from deccp_eval.backends.remote.faults import UNREACHABLE, Fault


def outage_kind(fault: Fault) -> bool:
    """A failure that says the endpoint, not this request, is in trouble."""
    return fault.retryable and fault.kind != "429"


class Breaker:
    """Shared by every request of one backend's run (one event loop: no locking)."""

    def __init__(self, outage_s: float, unreachable_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.outage_s = outage_s
        self.unreachable_s = unreachable_s
        self.clock = clock
        self.answered = False  # any success in this run
        self.failing_since: float | None = None  # first outage failure after the last success
        self.only_unreachable = True  # every failure since the last success was unreachable
        self.failed_keys: set[str] = set()  # failing since the last success, not poisoned
        self.last: Fault | None = None
        self._fresh = float("-inf")  # when the newest request that got an answer was sent
        self._first_failure: dict[str, float] = {}
        self._poisoned: set[str] = set()
        self.untried = True  # requests not sent yet remain: the engine clears it when it has sent them all

    def success(self, key: str, sent: float) -> None:
        """`key` got an answer to the attempt sent at `sent` (the clock's time)."""
        self.answered = True
        self.failing_since = None
        self.only_unreachable = True
        self.failed_keys.clear()
        self._fresh = max(self._fresh, sent)
        self.forget(key)

    def forget(self, key: str) -> None:
        """`key` is settled (answered or given up on)."""
        self._first_failure.pop(key, None)
        self._poisoned.discard(key)

    def failure(self, key: str, fault: Fault) -> str | None:
        """Record one failed attempt; a message when the run must stop now, else None."""
        if not outage_kind(fault):
            return None
        now = self.clock()
        if self.failing_since is None:
            self.failing_since = now
        self.only_unreachable = self.only_unreachable and fault.kind == UNREACHABLE
        first = self._first_failure.setdefault(key, now)
        if self._fresh > first:  # a request sent after this one first failed was answered: it is this one
            self._poisoned.add(key)
        else:
            self.failed_keys.add(key)
        self.last = fault
        if fault.kind == UNREACHABLE and not self.answered:
            return f"{fault.text}"
        bound = self.bound()
        down = now - self.failing_since
        if down >= bound:
            return (
                f"no answer for {down:.0f}s (stopping after {bound:g}s without one); last failure: "
                f"{fault.kind}: {fault.text}"
            )
        return None

    def bound(self) -> float:
        return self.unreachable_s if self.only_unreachable else self.outage_s

    def remaining(self) -> float:
        """Seconds until the breaker would trip (a retry need not wait longer than this)."""
        if self.failing_since is None:
            return self.bound()
        return max(0.0, self.failing_since + self.bound() - self.clock())

    def holding(self, key: str, fault: Fault) -> bool:
        """Keep retrying `key` past its attempts: it fails like every other request (an outage the
        breaker will end), not alone while others get answers (a prompt the server chokes on)."""
        if not outage_kind(fault) or key in self._poisoned:
            return False
        if fault.kind == UNREACHABLE:
            return True  # it never reached a server: no answer to store
        # With nothing left to send, nothing can tell an outage from prompts the server chokes on.
        return self.untried and len(self.failed_keys) > 1
