"""`deccp-eval train-judge`: fit the trained offline judge (`clf`) on labelled answers or on verdicts another
judge already stored, with grouped cross-validation and a calibrated confidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from deccp_eval.base.errors import UsageError
from deccp_eval.commands.common import command_line, db_option


@click.command("train-judge")
@click.option(
    "--from-labels",
    "label_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSONL of labelled answers (prompt, response, label, lang; question_id or pair_id groups the "
    "cross-validation; where speechmap_label is given with agree=true, the judge's answer-vs-not view learns "
    "that verdict); repeatable.",
)
@click.option(
    "--from",
    "source",
    default=None,
    help="Or: learn the verdicts this judge stored in --db, e.g. llm:openai:gpt-4o-mini.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to save the model (.npz; its card goes beside it as .npz.json, and with --from-labels "
    "the rows it got wrong out of fold as .npz.misses.jsonl: file, row id, label, prediction and the answer "
    "as the judge read it, for reading).",
)
@click.option(
    "--folds",
    type=click.IntRange(2, 20),
    default=5,
    show_default=True,
    help="Grouped cross-validation folds (a question never sits in its own training folds).",
)
@click.option(
    "--c",
    "c",
    type=click.FloatRange(min=1e-4),
    default=4.0,
    show_default=True,
    help="Inverse regularisation strength of the logistic regression.",
)
@click.option(
    "--min-questions",
    type=click.IntRange(1),
    default=3,
    show_default=True,
    help="An n-gram gets weight only if it occurs in answers to this many different questions.",
)
@click.option(
    "--baseline",
    default="keyword",
    show_default=True,
    help="Judge scored on the same rows for comparison in the card ('' to skip).",
)
@db_option
def train_judge(
    label_files: tuple[Path, ...],
    source: str | None,
    out: Path,
    folds: int,
    c: float,
    min_questions: int,
    baseline: str,
    db: Path,
) -> None:
    """Train a `clf:PATH` judge; prints grouped cross-validated figures per language and class.

    \b
    Examples:
      deccp-eval train-judge --from-labels data/speechmap/speechmap_china_dev.jsonl --out my.npz
      deccp-eval train-judge --from llm:openai:gpt-4o-mini --out results/judge.npz
      deccp-eval run -m hf:./model -j cascade:clf:results/judge.npz,llm:openai:gpt-4o-mini
    """
    from deccp_eval.judging.classifier import Lexicon, Settings, train
    from deccp_eval.judging.lexicon import feature_groups

    if bool(label_files) == bool(source):
        raise click.UsageError("give --from-labels FILE... or --from JUDGE (one of the two)")
    examples, data = _from_labels(label_files) if label_files else _from_store(source or "", db)
    model, report = train(examples, Lexicon(feature_groups()), Settings(c=c, min_questions=min_questions), folds=folds)
    oof = report.pop("out_of_fold")
    if baseline:
        report["baseline"] = {"judge": baseline, "cv": _baseline(baseline, examples)}
    model.card = {"name": out.stem, "data": data, **report, **_provenance(data, report), "command": command_line()}
    model.save(out)
    click.echo(_summary(model.card))
    click.echo(f"saved {out} (card {out.name}.json); use it as clf:{out}", err=True)
    if label_files:  # where each row was wrong out of fold: for reading the misses
        from deccp_eval.judging.classifier import answer_text

        misses = out.with_name(out.name + ".misses.jsonl")
        with misses.open("w", encoding="utf-8") as f:
            for e, o in zip(examples, oof):
                if o["pred"] != e.label:
                    row = {"source": e.source, "id": e.id, "group": e.group, "lang": e.lang, "label": e.label, **o}
                    # the answer as the judge read it (reasoning split off), where a person starts reading
                    f.write(json.dumps({**row, "answer": answer_text(e.response)[:1500]}, ensure_ascii=False) + "\n")


def _provenance(data: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """What the judge was trained on and its out-of-fold figures, in the card's top level, so a report that
    judges these very answers can say its agreement is training fit and print the honest figure beside it."""
    files = data.get("files") or []
    cv = report["cv"]
    grouped = {f"{lang} binary": cv[lang]["binary_accuracy"] for lang in cv if lang != "all"}
    grouped["4-class kappa"] = cv["all"]["kappa"]
    return {"sources": [f["sha256"] for f in files] + [Path(f["path"]).name for f in files], "grouped_cv": grouped}


def _from_labels(files: tuple[Path, ...]) -> tuple[list[Any], dict[str, Any]]:
    from deccp_eval.backends.fingerprint import file_sha256
    from deccp_eval.judging.classifier import Example
    from deccp_eval.judging.label_scores import load_labels

    examples = []
    for path in files:
        for r in load_labels(path):
            examples.append(
                Example(
                    question=r.prompt,
                    response=r.response,
                    label=r.label.value,
                    lang=r.lang,
                    group=r.question_id or r.pair_id or r.prompt,
                    source=path.name,
                    answer=r.speechmap_label == "answer" if r.agree and r.speechmap_label else None,
                    id=r.id or "",
                )
            )
    return examples, {"source": "labels", "files": [{"path": str(p), "sha256": file_sha256(p)} for p in files]}


def _from_store(source: str, db: Path) -> tuple[list[Any], dict[str, Any]]:
    from deccp_eval.judging.classifier import Example
    from deccp_eval.store.db import Store

    with Store(db) as store:
        rows = store.verdicts_of(source)
    latest = {(r.question, r.text): r for r in rows}  # the newest verdict per answer
    if not latest:
        raise UsageError(f"no parsed verdicts by {source!r} in {db}; judge stored answers with it first")
    examples = [
        Example(question=q, response=t or "", label=r.verdict, lang=r.lang, group=r.pair_id)
        for (q, t), r in latest.items()
    ]
    return examples, {"source": "stored verdicts", "judge": source, "db": str(db)}


def _baseline(spec: str, examples: list[Any]) -> dict[str, Any]:
    """The baseline judge's figures on the same rows (a rule judge has no folds to hold out)."""
    from deccp_eval.judging.classifier import scores
    from deccp_eval.judging.contract import make_judge
    from deccp_eval.judging.label_scores import LabelRow, predict

    rows = [LabelRow(prompt=e.question, response=e.response, label=e.label, lang=e.lang) for e in examples]
    return scores([e.label for e in examples], predict(make_judge(spec), rows), [e.lang for e in examples])


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _summary(card: dict[str, Any]) -> str:
    lines = [f"{card['n']} labelled answers, {card['folds']}-fold cross-validation grouped by question"]
    blocks = [("clf", card["cv"])] + (
        [(card["baseline"]["judge"], card["baseline"]["cv"])] if "baseline" in card else []
    )
    by_source = card.get("cv_by_source") or {}
    if len(by_source) > 1:
        blocks += [(f"clf: {Path(src).stem[:22]}", cv) for src, cv in by_source.items()]
    lines.append(f"{'judge':28}{'lang':6}{'n':>6}{'binary':>8}{'4-class':>9}{'kappa':>7}  F1 per class")
    for name, cv in blocks:
        for lang, s in cv.items():
            f1 = " ".join(f"{k}={_fmt(v['f1'])}" for k, v in s["per_class"].items())
            lines.append(
                f"{name:28}{lang:6}{s['n']:>6}{_fmt(s['binary_accuracy']):>8}{_fmt(s['accuracy']):>9}"
                f"{_fmt(s['kappa']):>7}  {f1}"
            )
    second = card.get("answer_vs_second_labels") or {}
    if second:
        lines.append(
            "answer vs not, against the second labeller's agreed verdicts: "
            + ", ".join(f"{lang} {v['accuracy']:.3f} (n={v['n']})" for lang, v in second.items())
        )
    cal = card["calibration"]
    lines.append(
        f"calibration: ECE {cal['ece_raw']:.3f} raw -> {cal['ece_calibrated']:.3f} isotonic (out of fold); "
        f"confidence >= {cal['threshold']}: {cal['share_at_or_above']:.0%} of verdicts, "
        f"{_fmt(cal['accuracy_at_or_above'])} right; a cascade escalates {cal['escalated_share_at_threshold']:.0%}"
    )
    return "\n".join(lines)
