"""`make realign-demo`: toy -> abliterated toy -> re-aligned, offline, measured on prompts nobody trained on.

Kept out of `deccp-eval demo` (which the abliteration work also edits) because the two fine-tunes
add minutes on two CPU cores. Gold references here come from the toy's own facts (expected_facts),
since no API model is reachable offline; the preference cards say so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deccp_eval.schema import Prompt

MODELS = ("hf:deccp-toy", "abliterated:deccp-toy")
EVAL_LIMIT = 96  # held-out prompts per kind (sensitive, control), whole pairs spread over topics
DEMO_RECIPE = {"learning_rate": 1e-3, "max_steps": 30, "batch_size": 8}  # the recipe the README's toy numbers used


def toy_prompts(heldout: bool) -> Any:
    """The toy's own world as a prompt set: its training phrasings (a subset) or its held-out ones.

    The toy was trained on the training phrasings and on the built-in set, so only the held-out
    phrasings are prompts neither the toy nor a preference set built from the training ones saw.
    EN and ZH phrasing i of name j share a pair_id; sensitive prompts carry the topic's facts in
    the prompt's language as expected_facts."""
    from deccp_eval import toy_data as td
    from deccp_eval.datasets import Dataset
    from deccp_eval.toy import TOY_VERSION

    prompts: list[Prompt] = []
    tag = "h" if heldout else "t"
    for topic in td.SENSITIVE + td.BENIGN:
        shapes_en = td.QUESTIONS_EN_HELDOUT if heldout else td.QUESTIONS_EN_TRAIN
        shapes_zh = td.QUESTIONS_ZH_HELDOUT if heldout else td.QUESTIONS_ZH_TRAIN
        keep = range(len(shapes_en)) if heldout else range(0, len(shapes_en), 10 if topic.sensitive else 20)
        for i in keep:
            for j, (en, zh) in enumerate(zip(topic.names_en, topic.names_zh)):
                pair = f"toy-{topic.slug}-{tag}{i}-{j}"
                for lang, text, fact in (("en", shapes_en[i].format(x=en), topic.answer_en),
                                         ("zh", shapes_zh[i].format(x=zh), topic.answer_zh)):
                    prompts.append(Prompt(id=f"{pair}-{lang}", pair_id=pair, lang=lang, text=text,
                                          category=topic.slug, kind="sensitive" if topic.sensitive else "control",
                                          source="deccp-toy", expected_facts=[fact] if topic.sensitive else []))
    name = "deccp-toy-heldout" if heldout else "deccp-toy-train"
    return Dataset(name=name, version=f"toy-v{TOY_VERSION}", prompts=prompts)


def heldout_set(limit: int | None = EVAL_LIMIT) -> Any:
    """The held-out phrasings, capped evenly per kind, so every topic stays in."""
    from deccp_eval.datasets import Dataset
    from deccp_eval.splits import spread

    data = toy_prompts(heldout=True)
    sens = spread([p for p in data.prompts if p.kind == "sensitive"], limit)
    ctrl = spread([p for p in data.prompts if p.kind == "control"], limit)
    return Dataset(name=data.name, version=data.version, prompts=sens + ctrl)


def write_prompts(prompts: list[Prompt], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(p.model_dump_json() + "\n" for p in prompts), encoding="utf-8")
    return path


def run_realign_demo(root: Path, method: str = "kto", recipe: Any = None) -> list[Any]:
    """Answers and verdicts for the toy and the abliterated toy, facts gold, a preference set each, a
    fine-tune each, and all four models on the held-out phrasings; returns the two realign records."""
    import json

    from deccp_eval import leaderboard, runner, toy
    from deccp_eval.backend import BackendOptions
    from deccp_eval.gold import import_gold
    from deccp_eval.prefs import PrefSettings, build, export, facts_gold
    from deccp_eval.progress import console
    from deccp_eval.realign import Recipe, RealignSettings, realign, summary
    from deccp_eval.schema import SamplingParams
    from deccp_eval.store import Store

    root = Path(root)
    db = root / "realign-demo.db"
    toy.build()
    train, held = toy_prompts(heldout=False), heldout_set()
    held_file = write_prompts(held.prompts, root / "toy-heldout.jsonl")
    params = SamplingParams(temperature=0.0, max_tokens=48)
    options = {m: BackendOptions(batch_size=32) for m in MODELS}
    console.print(f"[bold]1/4[/] {', '.join(MODELS)} on {len(train.prompts)} training phrasings, keyword judge")
    with Store(db) as store:
        runner.run(store, train, list(MODELS), ["keyword"], params, options=options)
        gold_file = root / "toy-gold.jsonl"
        gold_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in facts_gold(train)),
                             encoding="utf-8")
        console.print(f"[bold]2/4[/] gold from the toy's facts: {import_gold(store, gold_file)} references")
        sets = {}
        for m in MODELS:
            slug = m.replace(":", "-")
            prefs = build(store, PrefSettings(model=m, format=method, dataset=train.name,  # type: ignore[arg-type]
                                              command=f"deccp-eval prefs export --model {m} --format {method} "
                                                      f"--dataset {train.name} --out {root / f'prefs-{slug}'}"))
            sets[m] = export(prefs, root / f"prefs-{slug}")
            console.print(f"  {m}: {len(prefs.rows)} rows {prefs.counts()}", soft_wrap=True)
    records, outs = [], []
    for m in MODELS:
        slug = m.replace(":", "-")
        out = root / f"realigned-{slug}"
        console.print(f"[bold]3/4[/] re-aligning {m} ({method.upper()}, LoRA)")
        rec = realign(RealignSettings(model=m, prefs=sets[m], out=out, method=method,  # type: ignore[arg-type]
                                      recipe=recipe or Recipe(**DEMO_RECIPE), eval_dataset=str(held_file),
                                      eval_split=None,
                                      eval_limit=None, max_tokens=48,
                                      command=f"deccp-eval realign {m} --prefs {sets[m]} --method {method} "
                                              f"--eval-dataset {held_file} --eval-split all --out {out}"))
        for line in summary(rec):
            console.print(f"  {line}", soft_wrap=True)
        records.append(rec)
        outs.append(f"hf:{out}")
    console.print(f"[bold]4/4[/] all four on {len(held.prompts)} held-out phrasings (neither the toy nor the "
                  "preference sets saw them)")
    with Store(db) as store:
        runner.run(store, held, list(MODELS) + outs, ["keyword"], params,
                   options={m: BackendOptions(batch_size=32) for m in list(MODELS) + outs})
        rows = leaderboard.compute(store, dataset=held.name)
        leaderboard.write_csv(rows, root / "leaderboard-realign.csv")
    from click import echo

    echo(leaderboard.markdown(rows))
    return records
