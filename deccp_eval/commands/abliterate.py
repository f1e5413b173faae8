"""`deccp-eval abliterate MODEL --out DIR`: search, apply and save an abliterated model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from deccp_eval.base.schema import DEFAULT_JUDGE
from deccp_eval.commands.loading import local_load_options


def _load_flags(fn: Any) -> Any:
    for opt in reversed(local_load_options()):
        fn = opt(fn)
    return fn


@click.command()
@click.argument("model")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for the abliterated model (safetensors, tokenizer, abliteration.json, README.md).",
)
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Complete trials the stored study should hold; rerun with more to continue it.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Sampler seed.")
@click.option("--pick", type=int, default=None, help="Apply this trial number instead of the automatic choice.")
@click.option(
    "--max-kl",
    type=click.FloatRange(min=0),
    default=0.1,
    show_default=True,
    help="Pick rule: the most content among trials with KL at most this and censorship at most --max-censorship.",
)
@click.option(
    "--max-censorship",
    type=click.FloatRange(min=0, max=1),
    default=0.1,
    show_default=True,
    help="Pick rule: censorship bound (refusal + evasive + state_aligned on the selection split).",
)
@click.option("--judge", "-j", default=DEFAULT_JUDGE, show_default=True, help="Judge spec that scores candidates.")
@click.option(
    "--max-tokens", type=click.IntRange(min=1), default=48, show_default=True, help="New tokens per scored answer."
)
@click.option("--lang", "langs", default="en,zh", show_default=True, help="Languages, comma-separated.")
@click.option(
    "--harmful", default="deccp", show_default=True, help="Dataset whose sensitive prompts make the direction."
)
@click.option(
    "--harmless",
    "harmless",
    multiple=True,
    default=("deccp", "deccp-harmless"),
    show_default=True,
    help="Datasets whose control prompts are the harmless side (repeatable).",
)
@click.option(
    "--eval-every",
    type=click.IntRange(min=2),
    default=5,
    show_default=True,
    help="Every N-th question pair is held out: half selects the trial, half is the test split.",
)
@click.option(
    "--eval-dataset",
    default=None,
    help="Selection and test prompts from this dataset instead (split half and half by pair_id); "
    "default: held-out pairs of --harmful, and deccp-toy-heldout for deccp-toy.",
)
@click.option(
    "--eval-limit",
    type=click.IntRange(min=1),
    default=96,
    show_default=True,
    help="At most this many prompts in the selection split (the test split is scored whole).",
)
@click.option(
    "--embeddings/--no-embeddings",
    default=False,
    show_default=True,
    help="Also orthogonalize the input embeddings (a tied lm_head is untied and left unchanged).",
)
@click.option("--norm-preserve", is_flag=True, help="Rescale edited rows/columns to their original norms.")
@click.option("--project-harmless", is_flag=True, help="Make the direction orthogonal to the harmless mean.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, mps or auto.")
@click.option("--dtype", default="auto", show_default=True, help="auto, float32, bfloat16 or float16.")
@click.option(
    "--push-to-hub",
    "push_to_hub",
    default=None,
    metavar="OWNER/NAME",
    help="Upload the finished folder (weights, tokenizer, direction, model card) to this Hugging Face repo.",
)
@click.option("--private", is_flag=True, help="With --push-to-hub: create the repo private.")
@click.option(
    "--hub-token-env",
    default="HF_TOKEN",
    show_default=True,
    help="With --push-to-hub: env var holding the hub token (else huggingface_hub's saved login).",
)
@click.option(
    "--study-db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("results/abliteration.db"),
    show_default=True,
    help="SQLite file of the Optuna studies (resumable).",
)
@click.option(
    "--parallel-trials",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Trials at once on Ray workers (one GPU each, else one CPU), all in the one stored study.",
)
@click.option(
    "--ray-address", default=None, help="With --parallel-trials: a running Ray cluster; default: a local one."
)
@click.option(
    "--export-gguf",
    type=click.Choice(["F32", "F16", "Q8_0"]),
    default=None,
    help="Also write model.gguf beside the safetensors (MODEL must be a .gguf file; load with hf:OUT/model.gguf).",
)
@_load_flags
def abliterate(
    model: str,
    out: Path,
    langs: str,
    harmless: tuple[str, ...],
    push_to_hub: str | None,
    private: bool,
    hub_token_env: str,
    **kw: Any,
) -> None:
    """Remove the refusal direction from MODEL (a path, a hub id, or deccp-toy), chosen with the harness's judge.

    \b
    Examples:
      deccp-eval abliterate deccp-toy --out results/toy-abliterated --trials 8
      deccp-eval abliterate Qwen/Qwen2-7B-Instruct --out qwen2-abl --trials 40 --judge llm:openai:gpt-4o-mini
      deccp-eval abliterate Qwen/Qwen2-7B-Instruct --out qwen2-abl --trials 60   # continues the stored study
      deccp-eval abliterate Qwen/Qwen2-7B-Instruct --out qwen2-abl --trials 64 --parallel-trials 8  # Ray
      deccp-eval run -m hf:qwen2-abl                                            # or abliterated:qwen2-abl
      deccp-eval abliterate Qwen/Qwen3-235B-A22B --out q3-abl --device-map auto --max-memory 0=75GiB,1=75GiB,cpu=400GiB
      deccp-eval abliterate ./my-abl-base --out my-abl --push-to-hub my-user/my-model-abliterated
    """
    from deccp_eval.base.progress import console
    from deccp_eval.commands.loading import load_kwargs
    from deccp_eval.training.abliteration.pipeline import abliterate as run_abliterate
    from deccp_eval.training.abliteration.search import pareto_table
    from deccp_eval.training.abliteration.settings import AbliterateSettings

    if push_to_hub:
        from deccp_eval.training.abliteration.hub import check_repo_id

        check_repo_id(push_to_hub)  # before hours of work
    loading = load_kwargs(kw)
    for key in loading:
        kw.pop(key, None)
    settings = AbliterateSettings(
        model=model,
        out=out,
        langs=[x.strip() for x in langs.split(",") if x.strip()],
        harmless=list(harmless),
        **kw,
        **loading,
    )

    def on_trial(number: int, score: Any) -> None:
        r = score.rates
        console.print(
            f"trial {number} (selection split): censorship {score.censorship:.3f} (refusal {r.refusal:.3f}, "
            f"evasive {r.evasive:.3f}, state_aligned {r.state_aligned:.3f}), content {score.content:.3f}, "
            f"KL {score.kl:.4f}",
            soft_wrap=True,
        )

    result = run_abliterate(settings, on_trial=on_trial)
    from rich.console import Console

    wide = Console(stderr=True, width=max(console.width, 130))  # 12 columns: do not squeeze them into 80
    wide.print(pareto_table(result.study, result.chosen))
    rec = result.record
    for note in result.notes:
        console.print(f"chosen trial {result.chosen}: {note}", soft_wrap=True)
    click.echo(summary_line(rec))
    click.echo(str(result.out))
    if push_to_hub:
        from deccp_eval.training.abliteration.hub import push_folder

        click.echo(push_folder(result.out, push_to_hub, private=private, token_env=hub_token_env))


def summary_line(rec: Any) -> str:
    """Test-split before -> after, and the selection best-of-N apart."""
    b, a = rec.before, rec.after
    langs = ", ".join(
        f"{k} {b.langs[k].censorship:.3f} -> {v.censorship:.3f}" for k, v in a.langs.items() if k in b.langs
    )
    line = (
        f"test split ({rec.eval.n_sensitive} sensitive prompts): censorship {b.censorship:.3f} -> {a.censorship:.3f} "
        f"({langs}), content {b.content:.3f} -> {a.content:.3f}, refusal {b.rates.refusal:.3f} -> "
        f"{a.rates.refusal:.3f}, state_aligned {b.rates.state_aligned:.3f} -> {a.rates.state_aligned:.3f}, "
        f"first-token KL {a.kl:.4f}"
    )
    if a.over_refusal is not None:
        line += f", over-refusal {b.over_refusal or 0:.3f} -> {a.over_refusal:.3f}"
    if rec.selection is not None and rec.search is not None:
        line += (
            f"\nselection split, best of {rec.search.trials} trials (optimistic): censorship "
            f"{rec.selection.censorship:.3f}, content {rec.selection.content:.3f}, KL {rec.selection.kl:.4f}"
        )
    return line
