"""Several processes on one store split the work: each request is leased before it is sent.

A worker claims keys in chunks (`Store.claim`, one BEGIN IMMEDIATE transaction), sends them, and
stores each answer together with the release of its lease. A heartbeat thread keeps the worker's
leases alive while it works; a crashed worker stops renewing, its leases expire after `lease_s`
and the others adopt its keys. When everything left is leased by live workers, a worker waits for
their answers (or for their leases to lapse) instead of sending the same requests again.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence

from deccp_eval.store.db import Store
from deccp_eval.store.sql import now

log = logging.getLogger("deccp_eval")
LEASE_ENV = "DECCP_EVAL_LEASE_S"
DEFAULT_LEASE_S = 60.0


class Worker:
    """One process's identity on the store, its heartbeat, and the claim-send-wait loop."""

    def __init__(self, store: Store, lease_s: float | None = None, poll_s: float = 0.5) -> None:
        self.store = store
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_s = float(lease_s if lease_s is not None else os.environ.get(LEASE_ENV, DEFAULT_LEASE_S))
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __enter__(self) -> Worker:
        self._beat = threading.Thread(target=self._heartbeat, name="deccp-lease-heartbeat", daemon=True)
        self._beat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
        self.store.release(self.owner)

    def _heartbeat(self) -> None:
        store: Store | None = None
        try:
            while not self._stop.wait(self.lease_s / 3):
                try:
                    store = store or Store(self.store.path)
                    store.renew(self.owner, self.lease_s)
                except Exception as exc:  # a busy store: the next beat tries again
                    log.debug("lease heartbeat: %s", exc)
        finally:
            if store is not None:
                store.close()

    def reap_local(self) -> int:
        """Drop leases of workers on this host whose process is gone (killed with SIGKILL), so a
        rerun right after a crash need not wait for their leases to lapse."""
        host = socket.gethostname()
        dropped = 0
        for owner in self.store.lease_owners():
            parts = owner.rsplit(":", 2)
            if len(parts) != 3 or parts[0] != host or owner == self.owner or not parts[1].isdigit():
                continue
            if not _alive(int(parts[1])):
                self.store.release(owner)
                dropped += 1
        return dropped

    def run(
        self,
        keys: Sequence[str],
        send: Callable[[Iterable[str]], None],
        chunk: int,
        redo_errors: bool = False,
        redo_all: bool = False,
        table: str = "responses",
        stream: bool = False,
    ) -> int:
        """Claim, send and store every key this worker can; wait for the ones other workers hold.
        Returns how many keys another worker answered meanwhile. `table` is where an answer to a
        key lands: "responses" (generation) or "judgments" (judging). `send` gets a list of
        claimed keys per chunk, or with `stream` one lazy iterator that claims the next chunk
        when the previous one is used up, so a streaming engine never drains between chunks."""
        since = now()
        self.reap_local()
        pending = dict.fromkeys(keys)  # an ordered set: claimed keys leave it
        done_elsewhere = 0
        waited = False

        def claim() -> list[str]:
            claimed = self.store.claim(
                iter(pending),
                self.owner,
                self.lease_s,
                chunk,
                since,
                redo_errors=redo_errors,
                redo_all=redo_all,
                table=table,
            )
            for k in claimed:
                del pending[k]
            return claimed

        def claims(first: list[str]) -> Iterator[str]:
            batch = first
            while batch:
                yield from batch
                batch = claim() if pending else []

        while pending:
            claimed = claim()
            if claimed:
                send(claims(claimed) if stream else claimed)
                continue
            status = self.store.stored_status(list(pending), table)
            fresh = self.store.written_since(list(pending), since, table)
            finished = {
                k
                for k in pending
                if k in fresh or (k in status and not (redo_all or (redo_errors and status[k] is False)))
            }
            done_elsewhere += len(finished)
            for k in finished:
                del pending[k]
            if pending:
                self.reap_local()
                if not waited:
                    log.info("waiting for %d requests leased by other workers", len(pending))
                    waited = True
                time.sleep(self.poll_s)
        return done_elsewhere


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
