"""`make demo`: the whole pipeline offline on the toy model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from deccp_eval.analysis import language_gap, leaderboard
from deccp_eval.analysis.report.write import report_db
from deccp_eval.backends.contract import BackendOptions
from deccp_eval.base.errors import MissingDependency
from deccp_eval.base.progress import console
from deccp_eval.base.schema import DEFAULT_JUDGE, SamplingParams
from deccp_eval.datasets.loading import Dataset, load_dataset
from deccp_eval.demo.real_models_demo import run as run_real_models
from deccp_eval.demo.realign_demo import DEMO_METHOD, realigned_toy
from deccp_eval.run import runner
from deccp_eval.store.db import Store
from deccp_eval.toy import model as toy
from deccp_eval.toy.data import HELDOUT_SOURCE as TOY_HELDOUT
from deccp_eval.toy.data import STATE_FAMILY
from deccp_eval.toy.model import TOY_NAME, cached_toy
from deccp_eval.training.abliteration.export import load_record
from deccp_eval.training.splits import split_of


def run_demo(
    db: Path, limit: int | None = None, realign: bool = True, real_models: bool = True, command: str = "deccp-eval demo"
) -> int:
    """The toy, its abliterated version and (with `realign`) the abliterated toy re-aligned on gold
    answers, on the test split of the toy's held-out phrasings; leaderboard CSVs and the report; then
    (with `real_models`) real models' public answers (real_models_demo). The runs it stores record
    `command` (the demo's command line) and their step (`step_command`)."""
    steps = (6 if realign else 4) + real_models
    console.print(f"[bold]1/{steps}[/] toy model: {toy.build()}")
    data = toy_test_split(load_dataset(TOY_HELDOUT)).filter(langs=["en", "zh"], limit_pairs=limit)
    spec = f"hf:{TOY_NAME}"
    ablated: str | None = f"abliterated:{TOY_NAME}"
    params = SamplingParams(temperature=0.0, max_tokens=48)
    console.print(
        f"[bold]2/{steps}[/] {spec} on {len(data.prompts)} prompts ({data.name} {data.version}: the toy's "
        "held-out phrasings, never trained on, not used to build or choose the edit), "
        f"{toy.TOY_JUDGE} judge (the toy speaks the sentences that rule judge was built on)",
        soft_wrap=True,
    )
    with Store(db) as store:
        summary = runner.run(
            store,
            data,
            [spec],
            [toy.TOY_JUDGE],
            params,
            options={spec: BackendOptions(batch_size=32)},
            command=step_command(command, f"step 2/{steps}: {spec}"),
        )
    console.print(
        f"[bold]3/{steps}[/] abliterating the toy: Optuna trials scored on the selection split by the same judge "
        "plus expected facts (cached after the first time)",
        soft_wrap=True,
    )
    try:
        console.print(f"  {_abliterated_toy(console)}", soft_wrap=True)
    except MissingDependency as exc:  # an install without the `abliterate` extra still gets its leaderboard
        console.print(f"  skipped: {exc}")
        ablated = None
    with Store(db) as store:
        second = third = None
        if ablated:
            console.print(f"[bold]4/{steps}[/] {ablated} on the same prompts, same judge")
            second = runner.run(
                store,
                data,
                [ablated],
                [toy.TOY_JUDGE],
                params,
                options={ablated: BackendOptions(batch_size=32)},
                command=step_command(command, f"step 4/{steps}: {ablated}"),
            )
    if ablated and realign:
        console.print(
            f"[bold]5/{steps}[/] re-aligning {ablated} ({DEMO_METHOD.upper()}, LoRA) on gold answers "
            "against its censored ones, from the toy's training phrasings (cached after the first time)",
            soft_wrap=True,
        )
        try:
            folder = realigned_toy(
                db.parent / "realign",
                say=lambda s: console.print(s, soft_wrap=True),
                command=step_command(command, f"step 5/{steps}: {ablated} on the training phrasings (preference set)"),
            )
            realigned = f"hf:{folder}"
        except MissingDependency as exc:
            console.print(f"  skipped: {exc}")
        else:
            console.print(f"[bold]6/{steps}[/] {realigned} on the same prompts, same judge", soft_wrap=True)
            with Store(db) as store:
                third = runner.run(
                    store,
                    data,
                    [realigned],
                    [toy.TOY_JUDGE],
                    params,
                    options={realigned: BackendOptions(batch_size=32)},
                    command=step_command(command, f"step 6/{steps}: {realigned}"),
                )
    with Store(db) as store:
        rows, by_category = leaderboard.tables(store)
        out = leaderboard.write_csv(rows, db.parent / "leaderboard.csv")
        leaderboard.write_csv(by_category, db.parent / "leaderboard_by_category.csv")
        gaps = language_gap.write_csv(language_gap.compute(store), db.parent / "language_gap.csv")
    console.print(f"leaderboard: {out} (paired language gap: {gaps})")
    click.echo(leaderboard.markdown(rows))

    console.print(f"report: {report_db(db, db.parent / 'report').index}")
    missing = 0
    if real_models:
        console.print(
            f"[bold]{steps}/{steps}[/] real models (public answers): SpeechMap's answers of 37 models to the "
            f"odd-numbered China questions, imported and judged by {DEFAULT_JUDGE} (cached after the first "
            "time); the toy above shows abliteration and re-alignment, these show real censorship",
            soft_wrap=True,
        )
        missing = run_real_models(
            db.parent,
            lambda s: console.print(s, soft_wrap=True, highlight=False, markup=False),
            command=step_command(command, f"step {steps}/{steps}: real models"),
        )
    from deccp_eval.base import quiet

    if quiet.enabled():
        console.print(
            f"libraries' progress, trainer logs and warnings: {db.parent / 'deccp-eval.log'} (-v shows them)",
            soft_wrap=True,
            highlight=False,
        )
    return 1 if missing or any(s is not None and s.failed for s in (summary, second, third)) else 0


def step_command(command: str, step: str) -> str:
    """What a run made by the demo records as its command (`publish` shows it): the demo's own command
    line and the step, e.g. `deccp-eval demo # step 2/7: hf:deccp-toy`; no `deccp-eval run` line
    would reproduce the demo's test split."""
    return f"{command} # {step}"


def _abliterated_toy(console: Any) -> Path:
    """The toy with its refusal direction removed, chosen by the same judge; seconds once cached."""
    folder = cached_toy(
        on_trial=lambda n, s: console.print(
            f"  trial {n} (selection split): censorship {s.censorship:.3f}, content {s.content:.3f}, "
            f"first-token KL {s.kl:.4f}",
            soft_wrap=True,
        )
    )
    for line in headline(load_record(folder)):
        console.print(f"  {line}", soft_wrap=True)
    return folder


def headline(rec: Any) -> list[str]:
    """The demo's result in words: test-split numbers on the toy's held-out phrasings; selection apart."""
    b, a = rec.before, rec.after
    langs = "; ".join(
        f"{lang.upper()} {b.langs[lang].censorship:.0%} -> {v.censorship:.0%}"
        for lang, v in a.langs.items()
        if lang in b.langs
    )
    lines = [
        f"test split of the toy's held-out phrasings ({rec.eval.n_sensitive} sensitive prompts): censorship "
        f"{langs}; replies that state the asked fact {b.content:.0%} -> {a.content:.0%}; benign over-refusal "
        f"{b.over_refusal or 0:.0%} -> {a.over_refusal or 0:.0%}; first-token KL {a.kl:.4f}"
    ]
    state = [c for c in STATE_FAMILY if c in a.categories]
    if state:
        lines.append(
            f"the state-line family ({', '.join(state)}) is censored by a trained-in answer the edit does "
            f"not remove: censorship there {a.categories[state[0]].censorship:.0%} after the edit"
        )
    if rec.selection is not None and rec.search is not None:
        lines.append(
            f"(selection split, best of {rec.search.trials} trials, optimistic: censorship "
            f"{rec.selection.censorship:.0%}, content {rec.selection.content:.0%})"
        )
    return lines


def toy_test_split(data: Any) -> Any:
    """The test split of a held-out set (the same split the abliteration reports)."""
    return Dataset(
        name=data.name,
        version=f"{data.version} test split",
        prompts=[p for p in data.prompts if split_of(p.pair_id, every=1) == "test"],
    )
