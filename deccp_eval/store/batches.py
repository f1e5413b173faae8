"""Durable state of provider batches (`--batch`), in the same SQLite file as the store.

Its tables (`batches`, `batch_lines`) are created and upgraded with every other table by
`migrations`; this module only reads and writes them. A batch row is written the moment the
provider accepts the batch, with one line per request key; a line's result is written as it is
read, so a killed process loses nothing: the next one polls the same batch ids, or delivers the
results already read, instead of submitting again.

Line states: `pending` (in a batch still running), `ok` (result read), `error` (failed, expired,
canceled or errored at the provider). `delivered` is set once the caller has stored the result,
so `--no-cache` reruns never reuse a delivered line.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from deccp_eval.base.schema import Request, Response
from deccp_eval.store.migrations import migrate
from deccp_eval.store.sql import in_chunks, now, use_wal


class BatchRow(BaseModel):
    """One provider batch as stored (`deccp-eval batches` lists these)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    spec: str
    status: str
    n_requests: int
    completed: int
    failed: int
    finished: bool
    options: str
    message: str | None = None
    created: str
    updated: str


class Line(BaseModel):
    model_config = ConfigDict(extra="ignore")

    batch_id: str
    key: str
    state: str
    result: str | None = None
    error: str | None = None
    delivered: bool


class BatchState:
    """Its own connection to the store file (WAL: safe beside the Store's), one commit per write."""

    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(path), timeout=30.0)
        self.conn.row_factory = sqlite3.Row
        use_wal(self.conn, 30.0)
        migrate(self.conn, path)

    def close(self) -> None:
        self.conn.close()

    # -- writes ------------------------------------------------------------------------------
    def record(
        self, batch_id: str, spec: str, status: str, requests: Sequence[Request], options: dict[str, Any]
    ) -> None:
        """The batch and its request keys, in one transaction, as soon as the provider accepted it."""
        t = now()
        with self.conn:
            self.conn.execute(
                "INSERT OR IGNORE INTO batches (id, spec, status, n_requests, options, created, updated)"
                " VALUES (?,?,?,?,?,?,?)",
                (batch_id, spec, status, len(requests), json.dumps(options, sort_keys=True), t, t),
            )
            self.conn.executemany(
                "INSERT OR IGNORE INTO batch_lines (batch_id, key, request, state) VALUES (?,?,?,?)",
                [(batch_id, r.key, r.model_dump_json(), "pending") for r in requests],
            )

    def update(self, batch_id: str, status: str, completed: int, failed: int, message: str | None = None) -> None:
        """A poll's or a cancel's view of an open batch. A finished batch keeps its final state: `batches
        --cancel` in another process can read "cancelling" just before the run stores "cancelled"."""
        with self.conn:
            self.conn.execute(
                "UPDATE batches SET status=?, completed=?, failed=?, message=COALESCE(?, message), "
                "updated=? WHERE id=? AND finished=0",
                (status, completed, failed, message, now(), batch_id),
            )

    def finish(self, batch_id: str, status: str, missing_error: str) -> None:
        """The batch is over: lines it never answered become errors (an expired or failed batch)."""
        with self.conn:
            self.conn.execute(
                "UPDATE batch_lines SET state='error', error=? WHERE batch_id=? AND state='pending'",
                (missing_error, batch_id),
            )
            self.conn.execute(
                "UPDATE batches SET status=?, finished=1, updated=? WHERE id=?", (status, now(), batch_id)
            )

    def put_result(self, batch_id: str, key: str, response: Response) -> bool:
        """A line read from the provider; False when the key is not a pending line of this batch."""
        state = "error" if response.error else "ok"
        with self.conn:
            cur = self.conn.execute(
                "UPDATE batch_lines SET state=?, result=?, error=? WHERE batch_id=? AND key=? AND state='pending'",
                (state, response.model_dump_json(), response.error, batch_id, key),
            )
        return cur.rowcount > 0

    def delivered(self, keys: Iterable[str]) -> None:
        with self.conn:
            self.conn.executemany(
                "UPDATE batch_lines SET delivered=1 WHERE key=? AND state!='pending'", [(k,) for k in keys]
            )

    # -- reads -------------------------------------------------------------------------------
    def lines_for(self, keys: Iterable[str]) -> dict[str, list[Line]]:
        """key -> its lines, oldest batch first."""
        out: dict[str, list[Line]] = {}
        for marks, chunk in in_chunks(keys):
            rows = self.conn.execute(f"SELECT * FROM batch_lines WHERE key IN ({marks}) ORDER BY rowid", chunk)
            for row in rows:
                out.setdefault(row["key"], []).append(Line.model_validate(dict(row)))
        return out

    def lines_of(self, batch_id: str) -> list[Line]:
        return [
            Line.model_validate(dict(r))
            for r in self.conn.execute("SELECT * FROM batch_lines WHERE batch_id=? ORDER BY rowid", (batch_id,))
        ]

    def requests_of(self, batch_id: str) -> list[Request]:
        return [
            Request.model_validate_json(r[0])
            for r in self.conn.execute("SELECT request FROM batch_lines WHERE batch_id=? ORDER BY rowid", (batch_id,))
        ]

    def batch(self, batch_id: str) -> BatchRow | None:
        row = self.conn.execute("SELECT * FROM batches WHERE id=?", (batch_id,)).fetchone()
        return BatchRow.model_validate(dict(row)) if row else None

    def batches(self, open_only: bool = False) -> list[BatchRow]:
        sql = "SELECT * FROM batches" + (" WHERE finished=0" if open_only else "") + " ORDER BY created, rowid"
        return [BatchRow.model_validate(dict(r)) for r in self.conn.execute(sql)]
