"""`deccp-eval run`: generate, judge and store answers, then print the leaderboard."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from deccp_eval.base.schema import DEFAULT_JUDGE
from deccp_eval.commands.common import (
    backend_options,
    command_line,
    db_option,
    executor_options,
    make_executor,
    model_options,
    print_leaderboard,
    print_summary,
    resolve_models,
    setup_logging,
    split_csv,
)


@click.command()
@click.option(
    "--model",
    "-m",
    "models",
    multiple=True,
    required=True,
    help="BACKEND:MODEL, e.g. hf:./my-model, openai:gpt-4o-mini, or a name from --models-file. Repeatable.",
)
@click.option(
    "--judge",
    "-j",
    "judges",
    multiple=True,
    default=(DEFAULT_JUDGE,),
    show_default=True,
    help="Judge spec: keyword, llm:BACKEND:MODEL, panel:A,B,C. Repeatable.",
)
@click.option(
    "--dataset",
    "-d",
    default="deccp",
    show_default=True,
    help="A registered name, a .jsonl/.csv/.parquet file, a dataset folder or a hub name.",
)
@click.option("--map", "column_map", multiple=True, help="Column mapping FIELD=COLUMN for outside files.")
@click.option("--split", default=None, help="Dataset split for `datasets` sources.")
@click.option(
    "--lang", "langs", multiple=True, default=("en,zh",), show_default=True, help="Languages, comma-separated."
)
@click.option("--kind", type=click.Choice(["all", "sensitive", "control"]), default="all", show_default=True)
@click.option("--category", "categories", multiple=True, help="Only these categories (comma-separated).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N question pairs (all languages kept).")
@click.option("--samples", type=click.IntRange(min=1), default=1, show_default=True, help="Samples per prompt.")
@click.option("--temperature", type=click.FloatRange(0, 2), default=0.0, show_default=True)
@click.option("--max-tokens", type=click.IntRange(min=1), default=512, show_default=True)
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--system-prompt", default=None, help="System prompt sent with every question.")
@click.option(
    "--thinking",
    type=click.Choice(["on", "off"]),
    default=None,
    help="Reasoning on or off: enable_thinking for chat templates that take it (Qwen3, GLM-4.5 and later; "
    "hf, vllm, and OpenAI-compatible servers). Part of the request key.",
)
@click.option(
    "--reasoning-effort", default=None, help="APIs that take one (OpenAI o-series, GPT-5): low, medium, high."
)
@click.option(
    "--thinking-budget",
    type=click.IntRange(min=1024),
    default=None,
    help="Anthropic extended thinking: budget_tokens (max tokens must exceed it).",
)
@click.option("--no-cache", is_flag=True, help="Send every request again, even when stored.")
@click.option("--retry-errors", is_flag=True, help="Re-send requests stored as errors.")
@click.option("-v", "--verbose", count=True)
@model_options
@executor_options
@db_option
def run(
    models: tuple[str, ...],
    judges: tuple[str, ...],
    dataset: str,
    column_map: tuple[str, ...],
    split: str | None,
    langs: tuple[str, ...],
    kind: str,
    categories: tuple[str, ...],
    limit: int | None,
    samples: int,
    temperature: float,
    max_tokens: int,
    top_p: float,
    seed: int,
    system_prompt: str | None,
    thinking: str | None,
    reasoning_effort: str | None,
    thinking_budget: int | None,
    no_cache: bool,
    retry_errors: bool,
    verbose: int,
    db: Path,
    **kw: Any,
) -> None:
    """Generate answers, judge them, store everything; a rerun resumes where the last one stopped.

    \b
    Examples:
      deccp-eval run -m hf:deccp-toy --limit 10
      deccp-eval run -m openai:gpt-4o-mini -m anthropic:claude-sonnet-4-5 -j llm:openai:gpt-4o-mini
      deccp-eval run -m vllm:Qwen/Qwen2-7B-Instruct --lang zh --samples 3 --temperature 0.7
      deccp-eval run -m hf:deccp-toy -m abliterated:deccp-toy --executor ray --replicas 2
    """
    from deccp_eval.base.schema import SamplingParams
    from deccp_eval.datasets.loading import load_dataset, parse_column_map, require_langs
    from deccp_eval.run import runner
    from deccp_eval.store.db import Store

    setup_logging(db, verbose)
    data = load_dataset(dataset, parse_column_map(split_csv(column_map)), split).filter(
        langs=split_csv(langs),
        limit_pairs=limit,
        kinds=None if kind == "all" else [kind],
        categories=split_csv(categories) or None,
    )
    lang_given = click.get_current_context().get_parameter_source("langs") is not click.core.ParameterSource.DEFAULT
    require_langs(data, split_csv(langs) if lang_given else [], dataset)
    specs, options, defaults = resolve_models(list(models), kw, db)
    ctx = click.get_current_context()
    explicit = {
        n
        for n in ("temperature", "max_tokens", "top_p", "seed", "system_prompt")
        if ctx.get_parameter_source(n) is not click.core.ParameterSource.DEFAULT
    }
    defaults = {spec: {k: v for k, v in d.items() if k not in explicit} for spec, d in defaults.items()}
    params = SamplingParams(
        temperature=temperature,
        max_tokens=max_tokens,
        top_p=top_p,
        seed=seed,
        system_prompt=system_prompt,
        thinking=None if thinking is None else thinking == "on",
        reasoning_effort=reasoning_effort,
        thinking_budget=thinking_budget,
    )
    with Store(db) as store, make_executor(kw) as executor:
        summary = runner.run(
            store,
            data,
            specs,
            list(judges),
            params,
            samples=samples,
            options=options,
            judge_options=backend_options(kw, db),
            no_cache=no_cache,
            retry_errors=retry_errors,
            param_overrides=defaults,
            executor=executor,
            command=command_line(),
        )
        if kw.get("dry_run"):
            return
        print_summary(summary)
        print_leaderboard(store, summary.run_id)
    sys.exit(1 if summary.failed else 0)
