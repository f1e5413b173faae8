"""`deccp-eval prompts list|stats|export`: inspect and export prompt sets."""

from __future__ import annotations

import json
from pathlib import Path

import click

from deccp_eval.base.schema import CENSORED, VERDICTS
from deccp_eval.commands.common import Group, dataset_option, db_option, split_csv


@click.group(cls=Group)
def prompts() -> None:
    """Inspect and export prompt sets."""


@prompts.command("list")
@dataset_option
@click.option("--lang", "langs", multiple=True)
@click.option("--limit", type=int, default=None)
def prompts_list(dataset: str, column_map: tuple[str, ...], langs: tuple[str, ...], limit: int | None) -> None:
    """Print prompts as JSONL."""
    from deccp_eval.datasets.loading import load_dataset, parse_column_map

    data = load_dataset(dataset, parse_column_map(split_csv(column_map))).filter(
        langs=split_csv(langs) or None, limit_pairs=limit
    )
    for p in data.prompts:
        click.echo(p.model_dump_json())


@prompts.command("stats")
@dataset_option
@click.option("--json", "as_json", is_flag=True)
def prompts_stats(dataset: str, column_map: tuple[str, ...], as_json: bool) -> None:
    """Counts by category x language x kind."""
    from deccp_eval.datasets.loading import load_dataset, parse_column_map
    from deccp_eval.datasets.prompt_stats import counts, table

    data = load_dataset(dataset, parse_column_map(split_csv(column_map)))
    result = counts(data)
    click.echo(json.dumps(result, ensure_ascii=False) if as_json else table(result))


@prompts.command("export")
@click.option("--censored-by", "model", required=True, help="Model spec whose stored run is read.")
@click.option("--judge", default=None, help="Judge whose verdicts count (needed when several judged the run).")
@click.option("--run", "run_id", default=None, help="Only this run (default: every stored answer of the model).")
@click.option(
    "--verdict",
    "verdicts",
    multiple=True,
    type=click.Choice(VERDICTS),
    help="Verdicts to export (default: refusal, evasive, state_aligned).",
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="JSONL file (default stdout)."
)
@db_option
def prompts_export(
    model: str, judge: str | None, run_id: str | None, verdicts: tuple[str, ...], out: Path | None, db: Path
) -> None:
    """Write the prompts a model actually censored in a stored run (its per-model censored list).

    \b
    Example:
      deccp-eval prompts export --censored-by hf:deccp-toy --out censored.jsonl
    """
    from deccp_eval.analysis.censored import censored_prompts
    from deccp_eval.store.db import Store

    if not db.exists():
        raise click.UsageError(f"{db} does not exist")
    with Store(db) as store:
        rows = censored_prompts(store, model, judge=judge, run_id=run_id, verdicts=verdicts or CENSORED)
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        click.echo(f"wrote {len(lines)} prompts to {out}", err=True)
    else:
        for line in lines:
            click.echo(line)
