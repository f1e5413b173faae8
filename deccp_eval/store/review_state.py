"""Human review state, in tables beside the core store's in the same SQLite file (created and
upgraded by `migrations`, like every table).

One label row per (reviewer, response) so concurrent reviewers never overwrite each other; gold
review actions (marked reviewed, edited, flagged) are an append-only log. The core `gold` table
holds the references themselves: an edit is a new reviewed reference, the original stays.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from deccp_eval.base.errors import UsageError
from deccp_eval.base.schema import Accuracy, GoldReference, Verdict
from deccp_eval.store.migrations import migrate
from deccp_eval.store.sql import now

EDIT_MODEL_PREFIX = "review:"
REVIEWER_MAX = 64


def check_reviewer(name: str) -> str:
    name = name.strip()
    if not name or len(name) > REVIEWER_MAX or not all(c.isalnum() or c in "._-@ " for c in name):
        raise UsageError(f"reviewer name {name[:80]!r}: use 1-{REVIEWER_MAX} letters, digits, spaces or ._-@")
    return name


class Label(BaseModel):
    """One reviewer's label of one stored answer (what the browser sends and the store keeps)."""

    model_config = ConfigDict(extra="forbid")

    reviewer: str
    response_key: str = Field(min_length=1, max_length=128)
    verdict: Verdict
    accuracy: Accuracy | None = None
    misinformation: bool | None = None
    note: str = Field(default="", max_length=4000)
    created: str = ""
    updated: str = ""

    @field_validator("reviewer")
    @classmethod
    def _reviewer(cls, v: str) -> str:
        try:
            return check_reviewer(v)
        except UsageError as exc:
            raise ValueError(str(exc)) from None


def ensure_tables(conn: sqlite3.Connection) -> None:
    """The review tables, through the store's one migration path (`migrations`, which owns them; a
    Store already ran it on open)."""
    migrate(conn)


def has_tables(conn: sqlite3.Connection) -> bool:
    """True when review tables exist (every store migrated to version 5 has them; a connection to a
    store that was never migrated may not)."""
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='review_labels'").fetchone()
    return row is not None


def _label(row: sqlite3.Row) -> Label:
    return Label(
        reviewer=row["reviewer"],
        response_key=row["response_key"],
        verdict=row["verdict"],
        accuracy=row["accuracy"],
        misinformation=None if row["misinformation"] is None else bool(row["misinformation"]),
        note=row["note"],
        created=row["created"],
        updated=row["updated"],
    )


def put_label(conn: sqlite3.Connection, label: Label) -> Label:
    """Insert or update this reviewer's label of this answer; other reviewers' rows are untouched."""
    stamp = now()
    with conn:
        conn.execute(
            "INSERT INTO review_labels VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(reviewer, response_key) DO UPDATE SET "
            "verdict=excluded.verdict, accuracy=excluded.accuracy, misinformation=excluded.misinformation, "
            "note=excluded.note, updated=excluded.updated",
            (
                label.reviewer,
                label.response_key,
                label.verdict.value,
                label.accuracy.value if label.accuracy else None,
                None if label.misinformation is None else int(label.misinformation),
                label.note,
                stamp,
                stamp,
            ),
        )
    row = conn.execute(
        "SELECT * FROM review_labels WHERE reviewer=? AND response_key=?", (label.reviewer, label.response_key)
    ).fetchone()
    return _label(row)


def delete_label(conn: sqlite3.Connection, reviewer: str, response_key: str) -> bool:
    with conn:
        cur = conn.execute("DELETE FROM review_labels WHERE reviewer=? AND response_key=?", (reviewer, response_key))
    return cur.rowcount > 0


def labels(
    conn: sqlite3.Connection, reviewer: str | None = None, response_keys: Sequence[str] | None = None
) -> list[Label]:
    """Stored labels, oldest change first; none (not an error) when review never ran on this store."""
    if not has_tables(conn):
        return []
    where, args = ("WHERE reviewer=?", (reviewer,)) if reviewer is not None else ("", ())
    rows = list(conn.execute(f"SELECT * FROM review_labels {where} ORDER BY updated, rowid", args))
    out = [_label(r) for r in rows]
    if response_keys is not None:
        wanted = set(response_keys)
        out = [x for x in out if x.response_key in wanted]
    return out


# gold ---------------------------------------------------------------------------------------------


def log_gold(
    conn: sqlite3.Connection,
    dataset: str,
    prompt_id: str,
    reviewer: str,
    action: str,
    model: str | None = None,
    sample: int | None = None,
    note: str = "",
) -> None:
    with conn:
        conn.execute(
            "INSERT INTO review_gold_log (dataset, prompt_id, model, sample, reviewer, action, note, created) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (dataset, prompt_id, model, sample, reviewer, action, note, now()),
        )


def gold_log(conn: sqlite3.Connection, dataset: str | None = None) -> list[dict[str, Any]]:
    if not has_tables(conn):
        return []
    where, args = ("WHERE dataset=?", (dataset,)) if dataset else ("", ())
    return [dict(r) for r in conn.execute(f"SELECT * FROM review_gold_log {where} ORDER BY id", args)]


def edited_reference(
    existing: Sequence[GoldReference], prompt_id: str, reviewer: str, text: str, template_hash: str = ""
) -> GoldReference:
    """A reviewer's corrected text as a new reviewed reference (model `review:NAME`, next free sample)."""
    model = EDIT_MODEL_PREFIX + reviewer
    taken = [r.sample for r in existing if r.prompt_id == prompt_id and r.model == model]
    return GoldReference(
        prompt_id=prompt_id,
        model=model,
        text=text,
        created=now(),
        template_hash=template_hash,
        sample=max(taken) + 1 if taken else 0,
        reviewed=True,
    )
