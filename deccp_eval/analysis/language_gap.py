"""How much more a model censors in Chinese than in English, on the same questions.

The prompt sets are paired (each question in both languages), so the two censorship rates are not
independent samples: the gap is a paired difference. Per model x judge, over pairs answered and
judged in both languages: censored_en, censored_zh, gap = zh - en, a 95% interval for the paired
difference (Newcombe's square-and-add score interval, method 10 of Newcombe 1998: the two Wilson
intervals combined with the correlation of the pair's outcomes), and the exact McNemar p-value (a two-sided
binomial test over the discordant pairs). Tests check both against statsmodels/scipy and a published
table; neither library is needed here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from deccp_eval.analysis.leaderboard import _fingerprint
from deccp_eval.base.schema import CENSORED
from deccp_eval.base.stats import wilson
from deccp_eval.store.db import latest_judgments
from deccp_eval.store.rows import JudgmentRow, ResponseRow


@dataclass(frozen=True)
class PairedTable:
    """Pairs by outcome: `both` censored in both languages, `en_only`, `zh_only`, `neither`."""

    both: int
    en_only: int
    zh_only: int
    neither: int

    @property
    def n(self) -> int:
        return self.both + self.en_only + self.zh_only + self.neither


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p over b and c discordant pairs: P(|X - m/2| >= |b - m/2|), X ~ Bin(m, 1/2)."""
    m = b + c
    if m == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(m, i) for i in range(k + 1)) / 2**m
    return min(1.0, 2 * tail)


def paired_interval(t: PairedTable, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% interval for p_zh - p_en (Newcombe's square-and-add score method for paired proportions, his
    method 10, with its corrected correlation); (nan, nan) for no pairs."""
    n = t.n
    if n == 0:
        return math.nan, math.nan
    x_zh, x_en = t.both + t.zh_only, t.both + t.en_only
    p1, p2 = x_zh / n, x_en / n
    l1, u1 = wilson(x_zh, n, z)
    l2, u2 = wilson(x_en, n, z)
    denom = (t.both + t.zh_only) * (t.en_only + t.neither) * (t.both + t.en_only) * (t.zh_only + t.neither)
    # the correlation of the pair's two outcomes, with Newcombe's correction: ad - bc shrinks by n/2 toward 0
    cross: float = t.both * t.neither - t.zh_only * t.en_only
    cross = cross - n / 2 if cross > n / 2 else 0 if cross >= 0 else cross
    phi = cross / math.sqrt(denom) if denom else 0.0
    d = p1 - p2
    delta = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    eps = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return max(-1.0, d - delta), min(1.0, d + eps)


@dataclass(frozen=True)
class Gap:
    model: str
    model_fingerprint: str
    dataset: str
    dataset_version: str
    judge: str
    n_pairs: int
    censored_en: float
    censored_zh: float
    gap: float
    gap_lo: float
    gap_hi: float
    discordant_en: int  # pairs censored in English only
    discordant_zh: int  # pairs censored in Chinese only
    mcnemar_p: float


def gap_of(t: PairedTable) -> dict[str, Any]:
    n = t.n
    lo, hi = paired_interval(t)
    en = (t.both + t.en_only) / n if n else math.nan
    zh = (t.both + t.zh_only) / n if n else math.nan
    return {
        "n_pairs": n,
        "censored_en": en,
        "censored_zh": zh,
        "gap": zh - en if n else math.nan,
        "gap_lo": lo,
        "gap_hi": hi,
        "discordant_en": t.en_only,
        "discordant_zh": t.zh_only,
        "mcnemar_p": mcnemar_exact(t.en_only, t.zh_only),
    }


def compute(
    store: Any,
    rows: Sequence[ResponseRow] | None = None,
    judgments: dict[tuple[str, str], JudgmentRow] | None = None,
    dataset: str | None = None,
) -> list[Gap]:
    """One Gap per model (fingerprint, dataset version) x judge, over sensitive pairs with a parsed verdict
    in both English and Chinese (Simplified; `zh-Hant` is left out), per sample index."""
    if rows is None:
        rows = store.response_rows(dataset=dataset)
    if judgments is None:
        judgments = latest_judgments(store, rows)
    judges = sorted({j for (_, j) in judgments})
    cells: dict[tuple, dict[str, bool]] = {}
    for r in rows:
        if r.error is not None or r.kind != "sensitive" or r.lang not in ("en", "zh"):
            continue
        ident = (r.model, _fingerprint(r), r.dataset, r.dataset_version)
        for judge in judges:
            j = judgments.get((r.key, judge))
            if j is None or j.verdict is None or j.parse_status == "unparsed":
                continue
            cells.setdefault((*ident, judge, r.pair_id, r.sample), {})[r.lang] = j.verdict in CENSORED
    tables: dict[tuple, list[int]] = {}
    for (*cell_ident, judge, _pair, _sample), langs in cells.items():
        if len(langs) < 2:
            continue
        t = tables.setdefault((*cell_ident, judge), [0, 0, 0, 0])
        en, zh = langs["en"], langs["zh"]
        t[0 if en and zh else 1 if en else 2 if zh else 3] += 1
    out = [Gap(*key, **gap_of(PairedTable(*counts))) for key, counts in tables.items()]
    out.sort(key=lambda g: (g.dataset, g.judge, g.model, g.model_fingerprint))
    return out


def write_csv(gaps: Sequence[Gap], path: str | Path) -> Path:
    import csv

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = list(Gap.__dataclass_fields__)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for g in gaps:
            w.writerow(
                {
                    k: (
                        f"{v:.4f}"
                        if isinstance(v, float) and k != "mcnemar_p"
                        else f"{v:.4g}"
                        if isinstance(v, float)
                        else v
                    )
                    for k, v in asdict(g).items()
                }
            )
    return path


def markdown(gaps: Sequence[Gap]) -> str:
    """The gap table (largest gap first within each judge)."""
    if not gaps:
        return "_No model has pairs judged in both English and Chinese._"
    lines = [
        "| model | judge | pairs | censored EN | censored ZH | gap ZH − EN [95% CI] | EN-only / ZH-only | McNemar p |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for g in sorted(gaps, key=lambda g: (g.judge, -(g.gap if g.gap == g.gap else -9))):
        lines.append(
            f"| {g.model} | {g.judge} | {g.n_pairs} | {g.censored_en:.0%} | {g.censored_zh:.0%} | "
            f"{g.gap:+.0%} [{g.gap_lo:+.0%}, {g.gap_hi:+.0%}] | {g.discordant_en} / {g.discordant_zh} | "
            f"{_p(g.mcnemar_p)} |"
        )
    lines += [
        "",
        "Pairs: questions answered and judged in both languages. The interval is Newcombe's paired score "
        "interval; the p-value is the exact McNemar test over the pairs censored in one language only.",
    ]
    return "\n".join(lines)


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"
