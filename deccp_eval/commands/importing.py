"""`deccp-eval import`: answers made by other harnesses, stored with provenance and judged here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from deccp_eval.base.schema import DEFAULT_JUDGE
from deccp_eval.commands.common import (
    backend_options,
    command_line,
    db_option,
    model_options,
    print_leaderboard,
    setup_logging,
)

FORMAT_NAMES = ("speechmap", "promptfoo", "inspect", "jsonl")  # importers.FORMATS, kept light for --help


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMAT_NAMES),
    required=True,
    help="speechmap: SpeechMap response rows (or data/speechmap's copy); promptfoo: an eval results JSON; "
    "inspect: an inspect_ai eval log (.json or .eval); jsonl: model, prompt, response per line.",
)
@click.option("--model", "model", default=None, help="Store every answer under this model name.")
@click.option(
    "--dataset",
    "-d",
    default=None,
    help="A registered dataset to find the prompts in, or the name for the file's own prompts "
    "(default: speechmap-china for --format speechmap, else the file's stem).",
)
@click.option(
    "--judge",
    "-j",
    "judges",
    multiple=True,
    default=(DEFAULT_JUDGE,),
    show_default=True,
    help="Judge the imported answers with these judges (cached like any judgment). Repeatable.",
)
@click.option("--no-judge", is_flag=True, help="Store only; judge later with `deccp-eval judge`.")
@click.option("--quiet", "-q", is_flag=True, help="Do not print the leaderboard.")
@click.option("-v", "--verbose", count=True)
@model_options
@db_option
def import_cmd(
    files: tuple[Path, ...],
    fmt: str,
    model: str | None,
    dataset: str | None,
    judges: tuple[str, ...],
    no_judge: bool,
    quiet: bool,
    verbose: int,
    db: Path,
    **kw: Any,
) -> None:
    """Import answers from other harnesses: each FILE in one transaction; importing it again stores nothing new.

    \b
    Examples:
      deccp-eval import data/speechmap/speechmap_china_dev.jsonl --format speechmap
      deccp-eval import results.json --format promptfoo --dataset my-prompts
      deccp-eval import logs/2026-01-01_task.eval --format inspect --model qwen3-8b
    """
    from deccp_eval.importers import import_file
    from deccp_eval.judging.contract import make_judge
    from deccp_eval.run import runner
    from deccp_eval.store.db import Store

    setup_logging(db, verbose)
    with Store(db) as store:
        tallies = []
        for path in files:
            t = import_file(store, path, fmt, model=model, dataset=dataset, command=command_line())
            tallies.append(t)
            click.echo(
                f"{path}: {t.answers} answers of {len(t.models)} models ({t.new_answers} new), "
                f"{t.new_judgments} new verdicts from the source ({', '.join(t.judges) or 'none'}), "
                f"{t.new_prompts} new prompts; datasets {', '.join(f'{d} ({n})' for d, n in t.datasets.items())}; "
                f"fingerprint {t.fingerprint}",
                err=True,
            )
        if not no_judge:
            judge_objs = [make_judge(spec, backend_options(kw, db)) for spec in judges]
            for t in tallies:
                for run_id in t.run_ids:
                    rows = store.response_rows(run_id=run_id)
                    refs = runner.gold_texts(store, rows[0].dataset) if rows else {}
                    for judge in judge_objs:
                        tally = runner.judge_rows(store, rows, judge, refs)
                        click.echo(
                            f"judge {tally.judge}: {tally.judged} judged, {tally.cached} from cache, "
                            f"{tally.unparsed} unparsed, {tally.errors} failed",
                            err=True,
                        )
        if not quiet:
            print_leaderboard(store)
