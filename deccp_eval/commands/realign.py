"""`deccp-eval realign MODEL --prefs DIR --out DIR`: a KTO / DPO fine-tune measured before and after."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any, cast

import click

from deccp_eval.base.schema import DEFAULT_JUDGE


@click.command()
@click.argument("model")
@click.option(
    "--prefs",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="A folder written by `deccp-eval prefs export`.",
)
@click.option("--method", type=click.Choice(["kto", "dpo"]), default="kto", show_default=True)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for the merged model, realign.json and README.md.",
)
@click.option("--lora/--full", default=True, show_default=True, help="LoRA adapters merged on export, or all weights.")
@click.option("--lr", "learning_rate", type=click.FloatRange(min=0, min_open=True), default=2e-4, show_default=True)
@click.option("--beta", type=click.FloatRange(min=0, min_open=True), default=0.1, show_default=True)
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True)
@click.option("--max-steps", type=int, default=-1, show_default=True, help="> 0 overrides --epochs.")
@click.option("--batch-size", type=click.IntRange(min=2), default=8, show_default=True)
@click.option(
    "--desirable-weight",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="KTO; default: balanced against the label counts.",
)
@click.option(
    "--undesirable-weight",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="KTO; default: balanced against the label counts.",
)
@click.option("--lora-r", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--eval-dataset", default="deccp", show_default=True, help="Prompt set the numbers are measured on.")
@click.option(
    "--eval-split",
    type=click.Choice(["test", "selection", "all"]),
    default="test",
    show_default=True,
    help="Its split by pair_id (the one `prefs export` leaves out), or all of it.",
)
@click.option(
    "--eval-every",
    type=click.IntRange(min=1),
    default=None,
    help="The split's `every` (deccp_eval.training.splits; 1: a set made only for evaluation). Default: the "
    "project's, the one `prefs export` uses.",
)
@click.option(
    "--eval-limit",
    type=click.IntRange(min=0),
    default=200,
    show_default=True,
    help="At most this many sensitive and this many control prompts (0: all of them).",
)
@click.option("--judge", "-j", default=DEFAULT_JUDGE, show_default=True)
@click.option("--max-tokens", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--dtype", default="auto", show_default=True)
@click.option(
    "--export-gguf",
    type=click.Choice(["F32", "F16", "Q8_0"]),
    default=None,
    help="Also write model.gguf (MODEL must be a .gguf file): metadata, tokenizer and template from it.",
)
def realign(
    model: str,
    prefs: Path,
    method: str,
    out: Path,
    lora: bool,
    learning_rate: float,
    beta: float,
    epochs: float,
    max_steps: int,
    batch_size: int,
    lora_r: int,
    eval_split: str,
    eval_every: int | None,
    eval_limit: int,
    desirable_weight: float | None,
    undesirable_weight: float | None,
    **kw: Any,
) -> None:
    """Fine-tune MODEL (a folder, deccp-toy, hf:..., abliterated:...) on a preference set.

    \b
    Examples:
      deccp-eval realign abliterated:qwen2-abl --prefs prefs-abl --out qwen2-realigned
      deccp-eval realign hf:deccp-toy --prefs prefs-toy --method dpo --max-steps 40 --out toy-realigned
      deccp-eval run -m hf:qwen2-realigned        # or vllm:qwen2-realigned
    """
    from deccp_eval.base.progress import console
    from deccp_eval.training.realign import RealignSettings, Recipe, summary
    from deccp_eval.training.realign import realign as run_realign

    settings = RealignSettings(
        model=model,
        prefs=prefs,
        out=out,
        method=method,  # type: ignore[arg-type]
        recipe=Recipe(
            learning_rate=learning_rate,
            beta=beta,
            epochs=epochs,
            max_steps=max_steps,
            batch_size=batch_size,
            lora=lora,
            lora_r=lora_r,
            lora_alpha=2 * lora_r,
            desirable_weight=desirable_weight,
            undesirable_weight=undesirable_weight,
        ),
        eval_split=None if eval_split == "all" else eval_split,  # type: ignore[arg-type]
        eval_limit=eval_limit or None,
        **({"eval_every": eval_every} if eval_every else cast(dict[str, Any], {})),
        command="deccp-eval " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        **kw,
    )
    console.print(f"re-aligning {model} on {prefs} ({method.upper()}{', LoRA' if lora else ''})")
    record = run_realign(settings)
    for line in summary(record):
        click.echo(line)
    click.echo(str(out))
