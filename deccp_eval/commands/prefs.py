"""`deccp-eval prefs export`: a preference set (KTO, DPO or SFT) from the store, for TRL as it is."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import cast

import click

from deccp_eval.commands.common import Group, db_option


@click.group("prefs", cls=Group)
def prefs() -> None:
    """Preference sets for re-alignment: gold references against a model's censored answers."""


@prefs.command("export")
@click.option("--model", "-m", required=True, help="Model spec whose stored answers are the rejected side.")
@click.option("--judge", "-j", default=None, help="Judge whose verdicts pick the censored answers (if several).")
@click.option("--format", "fmt", type=click.Choice(["kto", "dpo", "sft"]), default="kto", show_default=True)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for the `datasets` set, prefs.jsonl, prefs.json and README.md.",
)
@click.option("--dataset", "-d", default=None, help="Only this dataset's prompts and gold references.")
@click.option("--lang", "langs", default=None, help="Languages, comma-separated (default: all stored).")
@click.option(
    "--retain-share",
    type=click.FloatRange(0.0, 0.9),
    default=0.3,
    show_default=True,
    help="Share of rows that are control questions with the model's own answers.",
)
@click.option(
    "--exclude-split",
    type=click.Choice(["test", "selection", "none"]),
    default="test",
    show_default=True,
    help="Leave out prompts whose pair_id is in this split (deccp_eval.training.splits).",
)
@click.option(
    "--split-every",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Every N-th pair is held out (selection or test), as the abliteration splits.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@db_option
def prefs_export(
    model: str,
    judge: str | None,
    fmt: str,
    out: Path,
    dataset: str | None,
    langs: str | None,
    retain_share: float,
    exclude_split: str,
    split_every: int,
    seed: int,
    db: Path,
) -> None:
    """Pair gold references with MODEL's refusal / evasive / state_aligned answers.

    \b
    Examples:
      deccp-eval prefs export -m hf:Qwen/Qwen2-7B-Instruct --format dpo --out prefs-qwen2
      deccp-eval prefs export -m abliterated:qwen2-abl -j llm:openai:gpt-4o-mini --out prefs-abl
    """
    from deccp_eval.store.db import Store
    from deccp_eval.training.preference_pairs import Format, PrefSettings, build, export

    if not db.exists():
        raise click.UsageError(f"{db}: no store; run `deccp-eval run -m {model}` first")
    settings = PrefSettings(
        model=model,
        format=cast(Format, fmt),
        judge=judge,
        dataset=dataset,
        exclude_split=None if exclude_split == "none" else exclude_split,  # type: ignore[arg-type]
        split_every=split_every,
        retain_share=retain_share,
        seed=seed,
        langs=[x.strip() for x in langs.split(",") if x.strip()] if langs else None,
        command="deccp-eval " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )
    with Store(db) as store:
        made = build(store, settings)
    export(made, out)
    for verdict, by_lang in made.counts().items():
        click.echo(f"{verdict}: " + ", ".join(f"{k} {v}" for k, v in sorted(by_lang.items())), err=True)
    click.echo(f"{len(made.rows)} rows ({fmt}) in {out}")
