"""The per-prompt browser's data: every sensitive answer as compact JSON, embedded once in the page
and rendered by the page's script one page of rows at a time, so a 100-model board stays one
self-contained file that opens fast from file://.

Size is bounded by a byte budget for text: strings are stored once (a refusal template said by
forty models is one entry), and when the unique texts exceed the budget every text is cut to one
common length ("water-filling": short texts stay whole, the longest are cut the same amount).
The page marks a cut text as cut; the full texts stay in the store and in `deccp-eval publish`'s
answers.parquet.
"""

from __future__ import annotations

import bisect
import itertools
import json
from typing import Any

from deccp_eval.analysis.report.data import Report
from deccp_eval.analysis.report.views import AnswerView

# About 4.8 MB of text keeps a 100-model x 616-prompt page under 10 MB with its structure and
# plots; answers get three quarters of it, the judges' rationales the rest. Prompts are never cut.
TEXT_BUDGET = 4_800_000
SHARES = {"answer": 0.75, "judge": 0.25}


class Strings:
    """A string table: each distinct string once, referred to by index (-1: none), remembering
    which budget (answer, judge, or none for prompts) it is cut under."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.group: list[str | None] = []

    def add(self, text: str | None, group: str | None = None) -> int:
        if not text:
            return -1
        i = self.index.get(text)
        if i is None:
            i = self.index[text] = len(self.group)
            self.group.append(group)
        return i

    def values(self) -> list[str]:
        return list(self.index)

    def shown(self, budget: int) -> list[str]:
        """Every string, cut so that each group stays within its share of `budget`."""
        texts = self.values()
        out = list(texts)
        for group, share in SHARES.items():
            idx = [i for i, g in enumerate(self.group) if g == group]
            cap = cut_length([len(texts[i].encode("utf-8")) for i in idx], int(budget * share))
            for i in idx:
                out[i] = cut(texts[i], cap)
        return out


def cut_length(sizes: list[int], budget: int) -> int | None:
    """The largest per-string byte cap whose total stays within `budget` (None: no cut needed)."""
    if sum(sizes) <= budget:
        return None
    ordered = sorted(sizes)
    below = list(itertools.accumulate(ordered, initial=0))  # below[k]: the k smallest sizes' total

    def total(cap: int) -> int:  # sum(min(s, cap) for s in sizes), without walking them all per probe
        k = bisect.bisect_right(ordered, cap)
        return below[k] + cap * (len(ordered) - k)

    lo, hi = 0, ordered[-1]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if total(mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def cut(text: str, cap: int | None) -> str:
    """`text` cut to at most `cap` UTF-8 bytes, never inside a character."""
    if cap is None:
        return text
    raw = text.encode("utf-8")
    return text if len(raw) <= cap else raw[:cap].decode("utf-8", errors="ignore")


def trim(values: list[Any]) -> list[Any]:
    """Drop trailing empty fields (-1, None, []): the page reads a missing field as empty."""
    while values and values[-1] in (-1, None, []):
        values.pop()
    return values


def _answer(
    a: AnswerView, pair: int, model: int, lang: int, status: dict[str, int], judges: dict[str, int], s: Strings
) -> list[Any]:
    """[pair, model, lang, sample, status, text, judgments, error, reasoning, degenerate]; each judgment is
    [judge, status, confidence, rationale, decided_by, accuracy, misinformation (0/1), raw]."""
    js = [
        trim(
            [
                judges[j.judge],
                status[j.status],
                j.confidence,
                s.add(j.rationale, "judge"),
                s.add(j.decided_by),
                s.add(j.accuracy),
                None if j.misinformation is None else int(j.misinformation),
                s.add(j.raw if j.status == "unparsed" and j.raw != j.rationale else None, "judge"),
            ]
        )
        for j in a.judgments
    ]
    return trim(
        [
            pair,
            model,
            lang,
            a.sample,
            status[a.status],
            s.add(a.text, "answer"),
            js,
            s.add(a.error, "answer"),
            s.add(a.reasoning, "answer"),
            s.add(a.degenerate),
        ]
    )


def build(report: Report, statuses: list[str], text_budget: int = TEXT_BUDGET) -> dict[str, Any]:
    """The browser's data; answers in display order (pair, model, language, sample)."""
    s = Strings()
    status = {name: i for i, name in enumerate(statuses)}
    judges = {name: i for i, name in enumerate(report.judges)}
    models = {name: i for i, name in enumerate(report.models)}
    langs = {name: i for i, name in enumerate(report.langs)}
    categories = {name: i for i, name in enumerate(report.categories)}
    pairs: list[list[Any]] = []
    answers: list[list[Any]] = []
    for pi, p in enumerate(report.pairs):
        pairs.append(
            [p.dataset, p.pair_id, categories[p.category], [s.add(p.prompts.get(lang)) for lang in report.langs]]
        )
        for row in p.rows:
            for cell in row.cells:
                answers.extend(
                    _answer(a, pi, models[row.model], langs[cell.lang], status, judges, s) for a in cell.answers
                )
    texts, shown = s.values(), s.shown(text_budget)
    return {
        "statuses": statuses,
        "judges": report.judges,
        "models": report.models,
        "langs": report.langs,
        "categories": report.categories,
        "multiDataset": len(report.datasets) > 1,
        "pairs": pairs,
        "answers": answers,
        "strings": shown,
        "cut": gaps([i for i, (t, c) in enumerate(zip(texts, shown)) if len(c) < len(t)]),
    }


def gaps(indices: list[int]) -> list[int]:
    """Ascending indices as differences from the previous one (small numbers, a short list)."""
    return [b - a for a, b in zip([-1, *indices], indices)]


def script_json(value: Any) -> str:
    """JSON safe inside a <script type="application/json"> element: no `<`, `>` or `&` survives
    (they become \\u escapes JSON.parse reads back), so no text can close the element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
