"""Judge validation against human labels: accuracy, per-class precision/recall, Cohen's kappa."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from deccp_eval.base.errors import DatasetError
from deccp_eval.base.jsonl import read_jsonl_as
from deccp_eval.base.schema import VERDICTS, Judgment, Verdict, canonical_hash
from deccp_eval.base.stats import cohen_kappa
from deccp_eval.judging.contract import Judge, JudgeItem, judge_answers

UNPARSED = "unparsed"


class LabelRow(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prompt: str
    response: str
    label: Verdict
    lang: str = "en"
    id: str | None = None  # the row's name in its file, where it has one (train-judge's misses file cites it)
    reference: str | None = None
    expected_facts: list[str] = []
    question_id: str | None = None  # groups cross-validation: answers to one question stay together
    pair_id: str | None = None
    # a second labeller's verdict and whether its own judges agreed on it (SpeechMap's, in the dev file):
    # where they agreed, training the trained judge's answer view learns answer-or-not from it
    speechmap_label: str | None = None
    agree: bool | None = None


def load_labels(path: Path) -> list[LabelRow]:
    rows = list(read_jsonl_as(path, LabelRow))
    if not rows:
        raise DatasetError(f"{path}: no labelled rows")
    return rows


def judgments(judge: Judge, rows: Sequence[LabelRow]) -> list[Judgment | None]:
    """The judge's judgment for each row; None where the call failed."""
    items = [
        JudgeItem(
            response_key=canonical_hash({"i": i, "p": r.prompt, "r": r.response}),
            prompt=r.prompt,
            response=r.response,
            lang=r.lang,
            reference=r.reference,
            expected_facts=r.expected_facts,
        )
        for i, r in enumerate(rows)
    ]
    got: dict[str, Judgment] = {}
    judge.check()
    try:
        judge_answers(judge, items, lambda j: got.__setitem__(j.response_key, j))
    finally:
        judge.close()
    return [got.get(item.response_key) for item in items]


def label_of(j: Judgment | None) -> str:
    """`unparsed` (or a failed call) stays `unparsed`, never mapped to a class."""
    return j.verdict.value if j is not None and j.verdict is not None else UNPARSED


def predict(judge: Judge, rows: Sequence[LabelRow]) -> list[str]:
    return [label_of(j) for j in judgments(judge, rows)]


BINS: tuple[float, ...] = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def reliability(truth: Sequence[str], pred: Sequence[str], conf: Sequence[float | None]) -> list[dict[str, Any]]:
    """Accuracy by confidence bin: confidence means something when accuracy rises with it."""
    out = []
    for lo, hi in zip(BINS, BINS[1:]):
        idx = [i for i, c in enumerate(conf) if c is not None and (lo <= c < hi or (hi == 1.0 and c == 1.0))]
        if idx:
            out.append(
                {
                    "bin": f"{lo:.1f}-{hi:.1f}",
                    "n": len(idx),
                    "mean_confidence": sum(conf[i] for i in idx) / len(idx),  # type: ignore[misc]
                    "accuracy": sum(truth[i] == pred[i] for i in idx) / len(idx),
                }
            )
    missing = sum(c is None for c in conf)
    if missing:
        out.append(
            {
                "bin": "none",
                "n": missing,
                "mean_confidence": None,
                "accuracy": sum(truth[i] == pred[i] for i, c in enumerate(conf) if c is None) / missing,
            }
        )
    return out


def calibration_summary(
    truth: Sequence[str], pred: Sequence[str], conf: Sequence[float | None], threshold: float = 0.9
) -> dict[str, Any] | None:
    """Expected calibration error (10 equal-width bins), and what a cascade escalating below `threshold`
    would keep: the share of verdicts at or above it and how often those are right."""
    idx = [i for i, c in enumerate(conf) if c is not None]
    if not idx:
        return None
    n = len(idx)
    ece = 0.0
    for b in range(10):
        lo, hi = b / 10, (b + 1) / 10
        cell = [i for i in idx if lo <= conf[i] < hi or (b == 9 and conf[i] == 1.0)]  # type: ignore[operator]
        if cell:
            acc = sum(truth[i] == pred[i] for i in cell) / len(cell)
            ece += len(cell) / n * abs(acc - sum(conf[i] for i in cell) / len(cell))  # type: ignore[misc]
    sure = [i for i in idx if conf[i] >= threshold]  # type: ignore[operator]
    return {
        "ece": ece,
        "threshold": threshold,
        "share_at_or_above": len(sure) / n,
        "accuracy_at_or_above": sum(truth[i] == pred[i] for i in sure) / len(sure) if sure else None,
        "escalated_share": 1 - len(sure) / n,
    }


def metrics(truth: Sequence[str], pred: Sequence[str]) -> dict[str, Any]:
    n = len(truth)
    labels = list(VERDICTS)
    per_class = {}
    for lab in labels:
        tp = sum(t == lab and p == lab for t, p in zip(truth, pred))
        predicted = sum(p == lab for p in pred)
        actual = sum(t == lab for t in truth)
        per_class[lab] = {
            "precision": tp / predicted if predicted else None,
            "recall": tp / actual if actual else None,
            "support": actual,
        }
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
    got = judgments(judge, rows)
    pred = [label_of(j) for j in got]
    truth = [r.label.value for r in rows]
    result = metrics(truth, pred)
    result["judge"] = judge.id
    confidence = [j.confidence if j else None for j in got]
    result["reliability"] = reliability(truth, pred, confidence)
    result["calibration"] = calibration_summary(truth, pred, confidence)
    deciders = Counter(j.decided_by for j in got if j is not None and j.decided_by)
    if deciders:  # a cascade: who decided, and what the later members cost
        result["decided_by"] = dict(deciders)
        escalated = [j for j in got if j is not None and j.decided_by and len(j.members or []) > 1]
        result["escalated_share"] = len(escalated) / len(rows)
    result["by_lang"] = {}
    for lang in sorted({r.lang for r in rows}):
        idx = [i for i, r in enumerate(rows) if r.lang == lang]
        sub = metrics([truth[i] for i in idx], [pred[i] for i in idx])
        result["by_lang"][lang] = {
            k: sub[k] for k in ("n", "accuracy", "kappa", "binary_accuracy", "binary_kappa", "per_class")
        }
    return result
