"""`deccp-eval judge`: judge stored responses again with another judge, without regenerating."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from deccp_eval.base.schema import DEFAULT_JUDGE
from deccp_eval.commands.common import (
    backend_options,
    db_option,
    executor_options,
    make_executor,
    model_options,
    print_leaderboard,
    setup_logging,
)


@click.command()
@click.option(
    "--judge",
    "-j",
    "judges",
    multiple=True,
    default=(DEFAULT_JUDGE,),
    show_default=True,
    help="Judge spec; repeatable.",
)
@click.option("--run", "run_id", default=None, help="Only this run (default: every stored answer of each model).")
@click.option("--model", "-m", "models", multiple=True, help="Only these models.")
@click.option("-v", "--verbose", count=True)
@model_options
@executor_options
@db_option
def judge(
    judges: tuple[str, ...], run_id: str | None, models: tuple[str, ...], verbose: int, db: Path, **kw: Any
) -> None:
    """Judge stored responses again with another judge, without regenerating.

    \b
    Examples:
      deccp-eval judge -j llm:openai:gpt-4o-mini
      deccp-eval judge -j llm:vllm:Qwen/Qwen2-72B-Instruct --executor ray --gpus-per-replica 4
    """
    from deccp_eval.judging.contract import make_judge
    from deccp_eval.run import runner
    from deccp_eval.store.db import Store

    setup_logging(db, verbose)
    failed = 0
    with Store(db) as store:
        rows = store.response_rows(run_id=run_id, models=list(models) or None)
        if not rows:
            raise click.UsageError(f"no stored responses in {db}" + (f" for run {run_id}" if run_id else ""))
        with make_executor(kw) as executor:  # local judging models run here or on Ray; the store is written here
            for dataset in sorted({r.dataset for r in rows}):
                refs = runner.gold_texts(store, dataset)
                part = [r for r in rows if r.dataset == dataset]
                for spec in judges:
                    judge_obj = make_judge(spec, backend_options(kw, db), executor.backend)
                    tally = runner.judge_rows(store, part, judge_obj, refs)
                    if kw.get("dry_run"):
                        continue
                    click.echo(
                        f"judge {tally.judge}: {tally.judged} judged, {tally.cached} from cache, "
                        f"{tally.unparsed} unparsed, {tally.errors} failed",
                        err=True,
                    )
                    failed += tally.errors
        if kw.get("dry_run"):
            return
        print_leaderboard(store, run_id)
    sys.exit(1 if failed else 0)
