"""AdaptiveLimit: how many requests one remote backend keeps in flight."""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

log = logging.getLogger("deccp_eval")


class AdaptiveLimit:
    """At most `limit` requests in flight. The first request goes out alone, so a bad key or model
    costs one request and one clear error; the others follow when it comes back, or after `grace_s`
    (a slow model's first answer can take a minute: auth and model errors come back in well under
    the grace). Then up to `maximum`; a 429 halves the limit (once per wave of requests started
    before the last cut) and each `limit` successes in a row raise it by one."""

    def __init__(self, maximum: int, label: str = "", grace_s: float = 2.0) -> None:
        self.maximum = maximum
        self.limit = 1
        self.in_flight = 0
        self.label = label
        self.grace_s = grace_s
        self._grace: asyncio.TimerHandle | None = None
        self._opened = False
        self._aborted = False
        self._epoch = 0
        self._successes = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[int]:
        """Hold one of the `limit` places for one attempt; yields the epoch it started in."""
        await self._acquire()
        try:
            yield self._epoch
        finally:
            self.in_flight -= 1
            self._wake()

    async def _acquire(self) -> None:
        while self.in_flight >= self.limit or self._aborted:
            if self._aborted:
                raise asyncio.CancelledError()
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._wake()  # pass the place we were given to someone else
                raise
        self.in_flight += 1
        if self._grace is None and not self._opened:
            self._grace = asyncio.get_running_loop().call_later(self.grace_s, self.settled)

    def _wake(self) -> None:
        free = self.limit - self.in_flight
        while free > 0 and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                free -= 1

    def abort(self) -> None:
        """A fatal error (bad key, unknown model): no further attempt may start."""
        self._aborted = True
        if self._grace is not None:
            self._grace.cancel()
        while self._waiters:
            self._waiters.popleft().cancel()

    def settled(self) -> None:
        """The first attempt came back with anything but a fatal error (or the grace ran out): open up."""
        if not self._opened and not self._aborted:
            self._opened = True
            self.limit = self.maximum
            self._wake()

    def succeeded(self) -> None:
        self._successes += 1
        if self._successes >= self.limit and self.limit < self.maximum:
            self.limit += 1
            self._successes = 0
            self._wake()

    def rate_limited(self, epoch: int) -> None:
        if epoch != self._epoch or not self._opened:
            return  # started before the last cut (that wave was cut once already), or before the gate opened
        self._epoch += 1
        self._successes = 0
        new = max(1, self.limit // 2)
        if new < self.limit:
            log.info("%s: 429 from the server, concurrency %d -> %d", self.label, self.limit, new)
        self.limit = new
