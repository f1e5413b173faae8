"""`deccp-eval leaderboard`: write the leaderboard CSVs and print the table."""

from __future__ import annotations

import json
from pathlib import Path

import click

from deccp_eval.commands.common import db_option


@click.command("leaderboard")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("results/leaderboard.csv"), show_default=True
)
@click.option(
    "--run", "run_id", default=None, help="Only this run (default: every stored answer of each model, over all runs)."
)
@click.option("--json", "as_json", is_flag=True, help="Print rows as JSON instead of Markdown.")
@db_option
def leaderboard_cmd(out: Path, run_id: str | None, as_json: bool, db: Path) -> None:
    """Write leaderboard CSVs (overall and per category) and print the table."""
    from deccp_eval.analysis import language_gap, leaderboard
    from deccp_eval.base.forked import Forked
    from deccp_eval.store.db import Store

    if not db.exists():
        raise click.UsageError(f"{db} does not exist: run `deccp-eval run` (or `deccp-eval demo`) first")
    with Store(db) as store:
        answers = store.response_rows(run_id=run_id)
        stated = Forked(leaderboard.facts_matched, answers)  # matched apart while the judgments are read
        judgments = leaderboard.latest_judgments(store, answers)
        gaps = language_gap.compute(store, answers, judgments)
        rows, by_cat = leaderboard.tables(store, run_id=run_id, loaded=(answers, judgments), stated=stated.result())
        if not rows:
            raise click.UsageError(f"no results in {db}")
        leaderboard.write_csv(rows, out)
        leaderboard.write_csv(by_cat, out.with_name(out.stem + "_by_category.csv"))
        gap_csv = language_gap.write_csv(gaps, out.with_name("language_gap.csv"))
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, default=str))
    else:
        click.echo(leaderboard.markdown(rows))
        if gaps:
            click.echo("\nLanguage gap (paired, same questions in English and Chinese):\n")
            click.echo(language_gap.markdown(gaps))
    click.echo(f"wrote {out}, {out.with_name(out.stem + '_by_category.csv')} and {gap_csv}", err=True)
