"""`make demo`: the whole pipeline offline on the toy model."""

from __future__ import annotations

from pathlib import Path

import click

from deccp_eval.toy import TOY_NAME


def run_demo(db: Path, limit: int | None = None) -> int:
    from deccp_eval import leaderboard, runner, toy
    from deccp_eval.backend import BackendOptions
    from deccp_eval.datasets import load_dataset
    from deccp_eval.progress import console
    from deccp_eval.schema import SamplingParams
    from deccp_eval.store import Store

    console.print(f"[bold]1/3[/] toy model: {toy.build()}")
    data = load_dataset("deccp").filter(langs=["en", "zh"], limit_pairs=limit)
    spec = f"hf:{TOY_NAME}"
    params = SamplingParams(temperature=0.0, max_tokens=48)
    console.print(f"[bold]2/3[/] {spec} on {len(data.prompts)} prompts ({data.name} {data.version}), keyword judge")
    with Store(db) as store:
        summary = runner.run(store, data, [spec], ["keyword"], params,
                             options={spec: BackendOptions(batch_size=32)})
        rows = leaderboard.compute(store)
        out = leaderboard.write_csv(rows, db.parent / "leaderboard.csv")
        leaderboard.write_csv(leaderboard.compute(store, by=("model", "lang", "judge", "category")),
                              db.parent / "leaderboard_by_category.csv")
    console.print(f"[bold]3/3[/] leaderboard: {out}")
    click.echo(leaderboard.markdown(rows))
    from deccp_eval.report import report_db  # HTML report + PNGs beside the CSVs

    console.print(f"report: {report_db(db, db.parent / 'report').index}")
    return 1 if summary.failed else 0
