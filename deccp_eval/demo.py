"""`make demo`: the whole pipeline offline on the toy model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from deccp_eval.toy import TOY_NAME


def run_demo(db: Path, limit: int | None = None) -> int:
    from deccp_eval import leaderboard, runner, toy
    from deccp_eval.backend import BackendOptions
    from deccp_eval.datasets import load_dataset
    from deccp_eval.errors import MissingDependency
    from deccp_eval.progress import console
    from deccp_eval.schema import SamplingParams
    from deccp_eval.store import Store

    console.print(f"[bold]1/4[/] toy model: {toy.build()}")
    data = load_dataset("deccp").filter(langs=["en", "zh"], limit_pairs=limit)
    spec = f"hf:{TOY_NAME}"
    ablated: str | None = f"abliterated:{TOY_NAME}"
    params = SamplingParams(temperature=0.0, max_tokens=48)
    console.print(f"[bold]2/4[/] {spec} on {len(data.prompts)} prompts ({data.name} {data.version}), keyword judge")
    with Store(db) as store:
        summary = runner.run(store, data, [spec], ["keyword"], params,
                             options={spec: BackendOptions(batch_size=32)})
    console.print("[bold]3/4[/] abliterating the toy: Optuna trials scored by the same judge (cached after the first time)",
                  soft_wrap=True)
    try:
        console.print(f"  {_abliterated_toy(console)}", soft_wrap=True)
    except MissingDependency as exc:  # an install without the `abliterate` extra still gets its leaderboard
        console.print(f"  skipped: {exc}")
        ablated = None
    with Store(db) as store:
        second = None
        if ablated:
            console.print(f"[bold]4/4[/] {ablated} on the same prompts, same judge")
            second = runner.run(store, data, [ablated], ["keyword"], params,
                                options={ablated: BackendOptions(batch_size=32)})
        rows = leaderboard.compute(store)
        out = leaderboard.write_csv(rows, db.parent / "leaderboard.csv")
        leaderboard.write_csv(leaderboard.compute(store, by=("model", "lang", "judge", "category")),
                              db.parent / "leaderboard_by_category.csv")
    console.print(f"leaderboard: {out}")
    click.echo(leaderboard.markdown(rows))
    from deccp_eval.report import report_db  # HTML report + PNGs beside the CSVs

    console.print(f"report: {report_db(db, db.parent / 'report').index}")
    return 1 if summary.failed or (second is not None and second.failed) else 0


def _abliterated_toy(console: Any) -> Path:
    """The toy with its refusal direction removed, chosen by the same judge; seconds once cached."""
    from deccp_eval.abliteration.export import load_record
    from deccp_eval.abliteration.pipeline import cached_toy

    folder = cached_toy(on_trial=lambda n, s: console.print(
        f"  trial {n}: censorship {s.censorship:.3f}, first-token KL {s.kl:.4f}", soft_wrap=True))
    rec = load_record(folder)
    console.print(f"  held-out censorship {rec.before.censorship:.3f} -> {rec.after.censorship:.3f}, "
                  f"first-token KL {rec.after.kl:.4f} (direction at layer {rec.direction_layer:.2f})", soft_wrap=True)
    return folder
