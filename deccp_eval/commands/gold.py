"""`deccp-eval gold`: generate, export and import gold reference answers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from deccp_eval.commands.common import (
    Group,
    db_option,
    executor_options,
    make_executor,
    model_options,
    resolve_models,
    setup_logging,
    split_csv,
)


@click.group("gold", cls=Group, invoke_without_command=True)
@click.option("--model", "-m", "models", multiple=True, help="Model spec that writes references; repeatable.")
@click.option("--dataset", "-d", default="deccp", show_default=True)
@click.option("--lang", "langs", multiple=True, default=("en,zh",), show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N question pairs.")
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="References per prompt and model (temperature 0.7 when above 1).",
)
@click.option("--max-tokens", type=click.IntRange(min=1), default=1024, show_default=True)
@click.option("--retry-errors", is_flag=True)
@click.option("-v", "--verbose", count=True)
@model_options
@executor_options
@db_option
@click.pass_context
def gold(
    ctx: click.Context,
    models: tuple[str, ...],
    dataset: str,
    langs: tuple[str, ...],
    limit: int | None,
    samples: int,
    max_tokens: int,
    retry_errors: bool,
    verbose: int,
    db: Path,
    **kw: Any,
) -> None:
    """Write reference answers for every sensitive prompt with strong models (once, reusable).

    \b
    Examples:
      deccp-eval gold -m openai:gpt-4o -m anthropic:claude-sonnet-4-5
      deccp-eval gold export refs.jsonl
      deccp-eval gold import refs.jsonl
    """
    ctx.obj = {"db": db}
    if ctx.invoked_subcommand is not None:
        return
    if not models:
        raise click.UsageError("give at least one --model (or a subcommand: export, import)")
    from deccp_eval.base.schema import SamplingParams
    from deccp_eval.datasets.loading import load_dataset
    from deccp_eval.run.gold import generate_gold
    from deccp_eval.store.db import Store

    setup_logging(db, verbose)
    data = load_dataset(dataset).filter(langs=split_csv(langs), limit_pairs=limit)
    specs, options, _ = resolve_models(list(models), kw, db)
    params = SamplingParams(temperature=0.0 if samples == 1 else 0.7, max_tokens=max_tokens)
    with Store(db) as store, make_executor(kw) as executor:
        tallies = generate_gold(
            store, data, specs, options, samples=samples, params=params, retry_errors=retry_errors, executor=executor
        )
        total = sum(1 for _ in store.gold(data.name))
    if kw.get("dry_run"):
        return
    for t in tallies:
        click.echo(
            f"{t.model}: {t.planned} references ({t.cached} from cache, {t.generated} new, {t.errors} failed)", err=True
        )
    click.echo(f"{total} references stored for {data.name} in {db}", err=True)
    sys.exit(1 if any(t.errors for t in tallies) else 0)


@gold.command("export")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dataset", "-d", default=None, help="Only this dataset's references.")
@click.pass_context
def gold_export(ctx: click.Context, path: Path, dataset: str | None) -> None:
    """Write stored references to a JSONL file (to version and share them)."""
    from deccp_eval.run.gold import export_gold
    from deccp_eval.store.db import Store

    with Store(ctx.obj["db"]) as store:
        n = export_gold(store, path, dataset)
    click.echo(f"exported {n} references to {path}", err=True)


@gold.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def gold_import(ctx: click.Context, path: Path) -> None:
    """Load references from a JSONL file; a `reviewed` flag is kept."""
    from deccp_eval.run.gold import import_gold
    from deccp_eval.store.db import Store

    with Store(ctx.obj["db"]) as store:
        n = import_gold(store, path)
    click.echo(f"imported {n} references from {path}", err=True)
