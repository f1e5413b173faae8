"""Stored human labels as JSONL rows in the format `validate-judge --labels` reads, plus provenance."""

from __future__ import annotations

import json
from pathlib import Path

from deccp_eval.base.errors import UsageError
from deccp_eval.review.agreement import label_rows
from deccp_eval.store import review_state as review_store
from deccp_eval.store.db import Store


def export_labels(store: Store, path: Path, reviewer: str | None = None) -> tuple[int, int]:
    """One row per labelled answer (majority label; ties left out and counted). Returns (rows, ties)."""
    rows, maj, items = label_rows(store, reviewer)
    details: dict[str, dict[str, dict]] = {}
    for lab in review_store.labels(store.conn, reviewer=reviewer):
        details.setdefault(lab.response_key, {})[lab.reviewer] = lab.model_dump(
            mode="json", include={"verdict", "accuracy", "misinformation", "note", "updated"}
        )
    keys = [k for k in maj.labels if k in items]
    lines = []
    for key, row in zip(keys, rows):
        item = items[key]
        out = row.model_dump(mode="json", exclude_none=True)
        out.update(
            response_key=key,
            dataset=item.dataset,
            model=item.model,
            prompt_id=item.prompt_id,
            votes=details.get(key, {}),
        )
        lines.append(json.dumps(out, ensure_ascii=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines), len(maj.ties)


def stored_label_rows(db: Path) -> list:
    """`validate-judge --from-store`: the majority human label per answer; ties are reported on
    stderr and left out, never broken at random."""
    import click

    if not db.exists():
        raise UsageError(f"{db} does not exist")
    with Store(db) as store:
        rows, maj, _ = label_rows(store)
    if maj.ties:
        click.echo(f"{len(maj.ties)} answers left out: reviewers tied on their label", err=True)
    if not rows:
        raise UsageError(f"no human labels in {db}: label answers with `deccp-eval review` first")
    return rows
