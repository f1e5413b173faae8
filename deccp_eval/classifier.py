"""The local verdict classifier: train on stored LLM verdicts, save, load, measure calibration.

Character n-grams (1-4, within word boundaries, so English and Chinese work without a tokenizer),
TF-IDF, logistic regression with probabilities calibrated by cross-validation (scikit-learn).
Used by `deccp-eval train-judge` and by the `clf:PATH` judge. The file is a joblib pickle: load
only classifiers you trained yourself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from deccp_eval.errors import MissingDependency, UsageError


def features(question: str, response: str) -> str:
    """What the classifier reads: the answer, then the question (it tells what is on topic)."""
    return f"{response}\n\n[Q] {question}"


def build(seed: int = 0) -> Any:
    try:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
    except ImportError:
        raise MissingDependency("scikit-learn", "judges", "The clf judge") from None
    return make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True),
                         CalibratedClassifierCV(LogisticRegression(max_iter=2000, C=4.0, random_state=seed),
                                                method="sigmoid", cv=3))


def calibration(labels: Sequence[str], predicted: Sequence[str], confidence: Sequence[float],
                bins: int = 5) -> dict[str, float]:
    """Agreement and expected calibration error (|accuracy - mean confidence| weighted over bins)."""
    n = len(labels)
    ece = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, c in enumerate(confidence) if lo <= c < hi or (b == bins - 1 and c == 1.0)]
        if idx:
            acc = sum(labels[i] == predicted[i] for i in idx) / len(idx)
            conf = sum(confidence[i] for i in idx) / len(idx)
            ece += len(idx) / n * abs(acc - conf)
    agreement = sum(a == b for a, b in zip(labels, predicted)) / n if n else 0.0
    return {"agreement": agreement, "ece": ece, "mean_confidence": sum(confidence) / n if n else 0.0}


def train(texts: Sequence[str], labels: Sequence[str], test_share: float = 0.2, seed: int = 0) -> tuple[Any, dict]:
    """Fit on a stratified split and measure agreement and calibration on the held-out part; then refit
    on everything for the saved model. Returns (model, report)."""
    classes = sorted(set(labels))
    if len(classes) < 2 or min(list(labels).count(c) for c in classes) < 3:
        raise UsageError(f"training needs at least two verdict classes with 3+ examples each; got "
                         f"{ {c: list(labels).count(c) for c in classes} }")
    from sklearn.model_selection import train_test_split

    x_tr, x_te, y_tr, y_te = train_test_split(list(texts), list(labels), test_size=test_share, random_state=seed,
                                              stratify=list(labels))
    model = build(seed).fit(x_tr, y_tr)
    probs = model.predict_proba(x_te)
    cls = list(model.classes_)
    pred = [cls[max(range(len(cls)), key=lambda k: p[k])] for p in probs]
    report = {"n_train": len(x_tr), "n_test": len(x_te), "classes": cls,
              **calibration(y_te, pred, [float(max(p)) for p in probs])}
    return build(seed).fit(list(texts), list(labels)), report


def save(model: Any, path: Path, meta: dict[str, Any]) -> None:
    import joblib

    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    path.with_name(path.name + ".json").write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")


def load(path: Path) -> Any:
    import joblib

    return joblib.load(path)
