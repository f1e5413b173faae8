"""Judge validation against human labels: accuracy, per-class precision/recall, Cohen's kappa."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel, ConfigDict, ValidationError

from deccp_eval.errors import DatasetError
from deccp_eval.judge import Judge, JudgeItem
from deccp_eval.schema import VERDICTS, Verdict, canonical_hash
from deccp_eval.stats import cohen_kappa
from deccp_eval.textio import parse_json, read_text

UNPARSED = "unparsed"


class LabelRow(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prompt: str
    response: str
    label: Verdict
    lang: str = "en"
    reference: str | None = None


def load_labels(path: Path) -> list[LabelRow]:
    rows = []
    for lineno, line in enumerate(read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rows.append(LabelRow.model_validate(parse_json(line, path, line_offset=lineno - 1)))
        except ValidationError as exc:
            problems = "; ".join(f"field '{'.'.join(map(str, e['loc']))}': {e['msg']}" for e in exc.errors())
            raise DatasetError(f"{path}: line {lineno}: {problems}") from None
    if not rows:
        raise DatasetError(f"{path}: no labelled rows")
    return rows


def predict(judge: Judge, rows: Sequence[LabelRow]) -> list[str]:
    """The judge's label for each row; `unparsed` (or a failed call) stays `unparsed`."""
    items = [JudgeItem(response_key=canonical_hash({"i": i, "p": r.prompt, "r": r.response}), prompt=r.prompt,
                       response=r.response, lang=r.lang, reference=r.reference) for i, r in enumerate(rows)]
    got: dict[str, str] = {}
    judge.check()
    try:
        judge.judge(items, lambda j: got.__setitem__(j.response_key, j.verdict.value if j.verdict else UNPARSED))
    finally:
        judge.close()
    return [got.get(item.response_key, UNPARSED) for item in items]


def metrics(truth: Sequence[str], pred: Sequence[str]) -> dict[str, Any]:
    n = len(truth)
    labels = list(VERDICTS)
    per_class = {}
    for lab in labels:
        tp = sum(t == lab and p == lab for t, p in zip(truth, pred))
        predicted = sum(p == lab for p in pred)
        actual = sum(t == lab for t in truth)
        per_class[lab] = {"precision": tp / predicted if predicted else None,
                          "recall": tp / actual if actual else None, "support": actual}
    cols = labels + ([UNPARSED] if UNPARSED in pred else [])
    pairs = Counter(zip(truth, pred))
    confusion = {t: {p: pairs[(t, p)] for p in cols} for t in labels}
    bin_t = ["answer" if t == "answer" else "not_answer" for t in truth]
    bin_p = ["answer" if p == "answer" else "not_answer" for p in pred]
    return {
        "n": n,
        "accuracy": sum(t == p for t, p in zip(truth, pred)) / n if n else None,
        "kappa": cohen_kappa(truth, pred),
        "binary_accuracy": sum(t == p for t, p in zip(bin_t, bin_p)) / n if n else None,
        "binary_kappa": cohen_kappa(bin_t, bin_p),
        "unparsed": sum(p == UNPARSED for p in pred),
        "per_class": per_class,
        "confusion": confusion,
    }


def validate(judge: Judge, rows: Sequence[LabelRow]) -> dict[str, Any]:
    pred = predict(judge, rows)
    truth = [r.label.value for r in rows]
    result = metrics(truth, pred)
    result["judge"] = judge.id
    result["by_lang"] = {}
    for lang in sorted({r.lang for r in rows}):
        idx = [i for i, r in enumerate(rows) if r.lang == lang]
        sub = metrics([truth[i] for i in idx], [pred[i] for i in idx])
        result["by_lang"][lang] = {k: sub[k] for k in ("n", "accuracy", "kappa", "binary_accuracy", "binary_kappa")}
    return result
