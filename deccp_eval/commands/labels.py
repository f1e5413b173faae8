"""`deccp-eval labels`: export human labels for `validate-judge`, measure agreement between reviewers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from deccp_eval.base.errors import UsageError
from deccp_eval.commands.common import Group, db_option


@click.group("labels", cls=Group)
def labels() -> None:
    """Human labels from `deccp-eval review`: export them, measure agreement."""


def _open(db: Path):
    from deccp_eval.store.db import Store

    if not db.exists():
        raise UsageError(f"{db} does not exist")
    return Store(db)


@labels.command("export")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--reviewer", default=None, help="Only this reviewer's labels (default: majority over reviewers).")
@db_option
def export(path: Path, reviewer: str | None, db: Path) -> None:
    """Write labels as JSONL in the format `validate-judge --labels` reads (one row per answer)."""
    from deccp_eval.review.export import export_labels

    with _open(db) as store:
        n, ties = export_labels(store, path, reviewer)
    click.echo(
        f"exported {n} labelled answers to {path}" + (f"; {ties} ties between reviewers left out" if ties else ""),
        err=True,
    )


def _k(x: float) -> str:
    return "–" if x is None or math.isnan(x) else f"{x:.3f}"


@labels.command("agreement")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@db_option
def agreement_cmd(as_json: bool, db: Path) -> None:
    """Cohen's kappa per pair of reviewers and Fleiss' kappa over all, overall, per language and per class."""
    from dataclasses import asdict

    from deccp_eval.review.agreement import agreement

    with _open(db) as store:
        a = agreement(store)
    if not a.labels:
        raise UsageError(f"no human labels in {db}: label answers with `deccp-eval review` first")
    if as_json:
        click.echo(json.dumps(asdict(a), ensure_ascii=False, default=str))
        return
    lines = [
        f"{a.labels} labels by {len(a.reviewers)} reviewer(s) ({', '.join(a.reviewers)}) on {a.items} answers; "
        f"{a.overlap} labelled by two or more",
        f"Fleiss' kappa {_k(a.fleiss)}",
    ]
    for p in a.pairs:
        lines.append(
            f"  Cohen's kappa {p['a']} vs {p['b']}: {_k(p['kappa'])} on {p['n']} shared answers "
            f"(raw agreement {_k(p['agreement'])})"
        )
    lines.append("per language:")
    for lang, s in a.by_lang.items():
        pairs = "; ".join(f"{p['a']} vs {p['b']} {_k(p['kappa'])} (n={p['n']})" for p in s["pairs"])
        lines.append(
            f"  {lang}: Fleiss' kappa {_k(s['fleiss'])} on {s['overlap']} shared answers"
            + (f"; Cohen's {pairs}" if pairs else "")
        )
    lines.append("per class (Fleiss):")
    for cls, k in a.fleiss_per_class.items():
        lines.append(f"  {cls}: {_k(k)}")
    if a.overlap == 0:
        lines.append("no answer has two labels yet: agreement needs reviewers who share a --seed")
    click.echo("\n".join(lines))
