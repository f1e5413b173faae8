"""`deccp-eval validate-judge`: how well a judge agrees with human labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from deccp_eval.commands.common import backend_options, db_option, model_options


@click.command("validate-judge")
@click.option(
    "--labels",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="JSONL rows: prompt, response, label (answer|refusal|evasive|state_aligned), optional lang, reference.",
)
@click.option("--from-store", is_flag=True, help="Use the human labels stored by `deccp-eval review` in --db.")
@click.option("--judge", "-j", "spec", required=True, help="Judge spec, e.g. keyword or llm:openai:gpt-4o-mini.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@model_options
@db_option
def validate_judge(labels: Path | None, from_store: bool, spec: str, as_json: bool, db: Path, **kw: Any) -> None:
    """Accuracy, per-class precision/recall, Cohen's kappa and the confusion matrix against human labels.

    \b
    Example:
      deccp-eval validate-judge --labels tests/data/judge_labels.jsonl --judge keyword
    """
    from deccp_eval.judging.contract import make_judge
    from deccp_eval.judging.label_scores import load_labels, validate

    if (labels is None) == (not from_store):
        raise click.UsageError("give exactly one of --labels FILE or --from-store")
    if from_store:
        from deccp_eval.review.export import stored_label_rows

        rows = stored_label_rows(db)
    else:
        assert labels is not None  # checked above
        rows = load_labels(labels)
    result = validate(make_judge(spec, backend_options(kw)), rows)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    click.echo(_format(result))


def _fmt(x: float | None) -> str:
    return "–" if x is None or x != x else f"{x:.3f}"


def _format(r: dict[str, Any]) -> str:
    lines = [
        f"judge {r['judge']} on {r['n']} labelled responses ({r['unparsed']} unparsed)",
        f"accuracy {_fmt(r['accuracy'])}  kappa {_fmt(r['kappa'])}  "
        f"binary (answer vs not) accuracy {_fmt(r['binary_accuracy'])}  kappa {_fmt(r['binary_kappa'])}",
        "",
    ]
    for lang, s in r["by_lang"].items():
        lines.append(
            f"  {lang}: n={s['n']} accuracy {_fmt(s['accuracy'])} kappa {_fmt(s['kappa'])} "
            f"binary {_fmt(s['binary_accuracy'])}/{_fmt(s['binary_kappa'])}  recall "
            + " ".join(f"{lab}={_fmt(c['recall'])}" for lab, c in s["per_class"].items())
        )
    lines += ["", f"{'class':15}{'precision':>10}{'recall':>10}{'support':>9}"]
    for lab, s in r["per_class"].items():
        lines.append(f"{lab:15}{_fmt(s['precision']):>10}{_fmt(s['recall']):>10}{s['support']:>9}")
    if r.get("decided_by"):
        lines += [
            "",
            f"cascade: escalated {_fmt(r['escalated_share'])} of items; decided by "
            + ", ".join(f"{k}: {v}" for k, v in r["decided_by"].items()),
        ]
    if r.get("reliability"):
        lines += [
            "",
            "reliability (accuracy by confidence bin)",
            f"{'confidence':15}{'n':>6}{'mean conf':>11}{'accuracy':>10}",
        ]
        for b in r["reliability"]:
            lines.append(f"{b['bin']:15}{b['n']:>6}{_fmt(b['mean_confidence']):>11}{_fmt(b['accuracy']):>10}")
    cal = r.get("calibration")
    if cal:
        lines.append(
            f"expected calibration error {_fmt(cal['ece'])}; confidence >= {cal['threshold']}: "
            f"{cal['share_at_or_above']:.0%} of verdicts, {_fmt(cal['accuracy_at_or_above'])} right; "
            f"a cascade escalating below {cal['threshold']} sends {cal['escalated_share']:.0%} on"
        )
    cols = list(next(iter(r["confusion"].values())))
    lines += ["", "confusion (rows: human label, columns: judge)", " " * 15 + "".join(f"{c[:13]:>14}" for c in cols)]
    for t, row in r["confusion"].items():
        lines.append(f"{t:15}" + "".join(f"{row[c]:>14}" for c in cols))
    return "\n".join(lines)
