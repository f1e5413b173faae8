"""`deccp-eval publish --out DIR`: leaderboard, per-answer Parquet, report and dataset card in one folder."""

from __future__ import annotations

from pathlib import Path

import click

from deccp_eval.base.errors import UsageError
from deccp_eval.commands.common import db_option


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write (created; files with the same names are replaced).",
)
@click.option("--run", "run_id", default=None, help="Only this run (default: each model's latest run).")
@click.option("--title", default="deccp-eval results", show_default=True, help="Title of the dataset card.")
@db_option
def publish(out: Path, run_id: str | None, title: str, db: Path) -> None:
    """Write a folder ready to upload as a Hugging Face dataset or attach to a paper.

    \b
    leaderboard CSV + Parquet, answers.parquet (prompt, answer, verdict, judge, confidence and
    each row's provenance), report/index.html, and README.md (dataset card with provenance and
    the prompt set's licence). Example:
      deccp-eval publish --out results/publish && huggingface-cli upload ORG/NAME results/publish --repo-type dataset
    """
    from deccp_eval.analysis.publish import publish as write_bundle
    from deccp_eval.store.db import Store

    if not db.exists():
        raise UsageError(f"{db} does not exist: run `deccp-eval run` (or `deccp-eval demo`) first")
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a folder")
    with Store(db) as store:
        result = write_bundle(store, out, run_id=run_id, title=title)
    for path in result.files:
        click.echo(f"wrote {path}")
    click.echo(f"{result.answers} answers, {result.rows} answer x judge rows in {out}")
