"""Agreement between human reviewers (Cohen's kappa per pair, Fleiss' kappa over all), the majority
label per answer (ties reported, never broken at random) and each judge's agreement with it."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from deccp_eval.base.schema import VERDICTS, Verdict
from deccp_eval.base.stats import cohen_kappa
from deccp_eval.judging.label_scores import LabelRow
from deccp_eval.review.items import ReviewItem, items_for_keys, judge_verdicts
from deccp_eval.store import review_state as review_store
from deccp_eval.store.db import Store


def fleiss_kappa(items: Sequence[Counter[str]], categories: Sequence[str] = VERDICTS) -> tuple[float, dict[str, float]]:
    """Fleiss' kappa over items rated by two or more raters (the count may vary per item), and the
    per-category kappa. nan where chance agreement is total."""
    rated = [c for c in items if sum(c.values()) >= 2]
    if not rated:
        return math.nan, {c: math.nan for c in categories}
    sizes = [sum(c.values()) for c in rated]
    pairs_total = sum(n * (n - 1) for n in sizes)
    p_obs = sum(sum(v * v for v in c.values()) - n for c, n in zip(rated, sizes)) / pairs_total
    shares = {cat: sum(c[cat] for c in rated) / sum(sizes) for cat in categories}
    p_exp = sum(p * p for p in shares.values())
    overall = math.nan if p_exp == 1 else (p_obs - p_exp) / (1 - p_exp)
    per_class = {}
    for cat in categories:
        p = shares[cat]
        disagree = sum(c[cat] * (n - c[cat]) for c, n in zip(rated, sizes))
        per_class[cat] = math.nan if p in (0.0, 1.0) else 1 - disagree / (pairs_total * p * (1 - p))
    return overall, per_class


@dataclass
class Agreement:
    reviewers: list[str]
    labels: int
    items: int
    overlap: int  # items labelled by two or more reviewers
    fleiss: float
    fleiss_per_class: dict[str, float]
    pairs: list[dict[str, Any]] = field(default_factory=list)  # reviewer a, b, n, agreement, kappa
    by_lang: dict[str, dict[str, Any]] = field(default_factory=dict)


def _pairwise(by_item: dict[str, dict[str, str]], reviewers: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for a, b in combinations(reviewers, 2):
        common = [k for k, v in by_item.items() if a in v and b in v]
        la, lb = [by_item[k][a] for k in common], [by_item[k][b] for k in common]
        out.append(
            {
                "a": a,
                "b": b,
                "n": len(common),
                "agreement": sum(x == y for x, y in zip(la, lb)) / len(common) if common else math.nan,
                "kappa": cohen_kappa(la, lb),
            }
        )
    return out


def _by_item(rows: Sequence[review_store.Label]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for lab in rows:
        out.setdefault(lab.response_key, {})[lab.reviewer] = lab.verdict.value
    return out


def agreement(store: Store) -> Agreement:
    rows = review_store.labels(store.conn)
    by_item = _by_item(rows)
    reviewers = sorted({lab.reviewer for lab in rows})
    fleiss, per_class = fleiss_kappa([Counter(v.values()) for v in by_item.values()])
    result = Agreement(
        reviewers=reviewers,
        labels=len(rows),
        items=len(by_item),
        overlap=sum(len(v) >= 2 for v in by_item.values()),
        fleiss=fleiss,
        fleiss_per_class=per_class,
        pairs=_pairwise(by_item, reviewers),
    )
    items = items_for_keys(store, list(by_item))
    for lang in sorted({i.lang for i in items.values()}):
        sub = {k: v for k, v in by_item.items() if k in items and items[k].lang == lang}
        f, _ = fleiss_kappa([Counter(v.values()) for v in sub.values()])
        result.by_lang[lang] = {
            "items": len(sub),
            "overlap": sum(len(v) >= 2 for v in sub.values()),
            "fleiss": f,
            "pairs": _pairwise(sub, reviewers),
        }
    return result


@dataclass
class Majority:
    """The human label per answer: the most common one; a tie is kept aside and reported."""

    labels: dict[str, str]
    ties: dict[str, dict[str, int]]
    votes: dict[str, dict[str, str]]


def majority(store: Store, reviewer: str | None = None) -> Majority:
    by_item = _by_item(review_store.labels(store.conn, reviewer=reviewer))
    decided, ties = {}, {}
    for key, votes in by_item.items():
        counts = Counter(votes.values()).most_common()
        if len(counts) > 1 and counts[0][1] == counts[1][1]:
            ties[key] = dict(counts)
        else:
            decided[key] = counts[0][0]
    return Majority(labels=decided, ties=ties, votes=by_item)


def label_rows(store: Store, reviewer: str | None = None) -> tuple[list[LabelRow], Majority, dict[str, ReviewItem]]:
    """Stored human labels as the rows `validate-judge --labels` reads (majority label per answer)."""
    maj = majority(store, reviewer)
    items = items_for_keys(store, list(maj.labels))
    rows = [
        LabelRow(
            prompt=items[k].prompt,
            response=items[k].answer,
            label=Verdict(lab),
            lang=items[k].lang,
            reference=items[k].reference,
        )
        for k, lab in maj.labels.items()
        if k in items
    ]
    return rows, maj, items


def judges_vs_humans(store: Store) -> list[dict[str, Any]]:
    """Each stored judge's verdicts against the majority human label, over the answers both cover."""
    maj = majority(store)
    verdicts = judge_verdicts(store, list(maj.labels))
    judges = sorted({j for v in verdicts.values() for j in v})
    out = []
    for judge in judges:
        keys = [k for k in maj.labels if judge in verdicts.get(k, {})]
        truth = [maj.labels[k] for k in keys]
        pred = [verdicts[k][judge] for k in keys]
        out.append(
            {
                "judge": judge,
                "n": len(keys),
                "unparsed": pred.count("unparsed"),
                "accuracy": sum(t == p for t, p in zip(truth, pred)) / len(keys) if keys else math.nan,
                "kappa": cohen_kappa(truth, pred),
            }
        )
    return out


def human_review_summary(store: Store) -> dict[str, Any] | None:
    """What the report's "Human review" section shows; None when nobody has labelled anything."""
    a = agreement(store)
    if not a.labels:
        return None
    maj = majority(store)
    flags = review_store.gold_log(store.conn)
    return {
        "labels": a.labels,
        "answers": a.items,
        "reviewers": a.reviewers,
        "overlap": a.overlap,
        "decided": len(maj.labels),
        "ties": len(maj.ties),
        "fleiss": a.fleiss,
        "pairs": a.pairs,
        "by_lang": a.by_lang,
        "class_counts": dict(Counter(maj.labels.values())),
        "judges": judges_vs_humans(store),
        "gold": {action: sum(e["action"] == action for e in flags) for action in ("reviewed", "edited", "flag")},
    }
