"""Everything the report shows, gathered from the store once, as plain records the template can walk."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, NamedTuple

from deccp_eval.analysis import language_gap, leaderboard
from deccp_eval.analysis.report.compare import Comparison
from deccp_eval.analysis.report.views import LANG_NAMES, STATUSES, AnswerView, answer_view, lang_order, load_judgments
from deccp_eval.base.forked import Forked
from deccp_eval.base.stats import cohen_kappa
from deccp_eval.review.agreement import human_review_summary
from deccp_eval.store.db import Store, pick_judge
from deccp_eval.store.rows import JudgmentRow, ResponseRow


@dataclass
class Cell:
    lang: str
    answers: list[AnswerView] = field(default_factory=list)


@dataclass
class ModelRow:
    model: str
    cells: list[Cell]


@dataclass
class PairView:
    """One question in every language, with each model's answers side by side."""

    dataset: str
    pair_id: str
    category: str
    prompts: dict[str, str]
    rows: list[ModelRow]


@dataclass
class Report:
    generated: str
    source: str
    run_id: str | None
    judge: str | None
    judges: list[str]
    models: list[str]
    langs: list[str]
    categories: list[str]
    datasets: list[tuple[str, str]]
    leaderboard: list[dict[str, Any]]
    by_category: list[dict[str, Any]]
    pairs: list[PairView]
    status_counts: dict[str, int]
    comparisons: list[Comparison] = field(default_factory=list)  # report.compare, in display order
    human_review: dict[str, Any] | None = None  # review.agreement.human_review_summary
    language_gap: list[dict[str, Any]] = field(default_factory=list)  # language_gap.Gap rows of `judge`
    source_agreement: list[dict[str, Any]] = field(default_factory=list)  # `judge` vs imported verdicts

    @property
    def lang_names(self) -> dict[str, str]:
        return {lang: LANG_NAMES.get(lang, lang) for lang in self.langs}


class Loaded(NamedTuple):
    """What the report reads from the store: the answers, the newest judgment of each by each judge,
    the judges and how many answers each judged."""

    run_id: str | None
    rows: list[ResponseRow]
    judgments: dict[tuple[str, str], JudgmentRow]
    judges: list[str]
    counts: Counter[str]
    stated: Forked[list[bool | None]]  # leaderboard.facts_matched of the rows


def load(store: Store, run_id: str | None = None) -> Loaded:
    """One read of the store's answers and judgments, for `summarise` and `add_pairs`; the answers'
    facts are matched in a forked child meanwhile (the leaderboards' costliest step needs only the rows)."""
    rows = store.response_rows(run_id=run_id, required=True)
    stated = Forked(leaderboard.facts_matched, rows)
    return Loaded(run_id, rows, *load_judgments(store, rows), stated)


def summarise(store: Store, loaded: Loaded, judge: str | None = None, source: str = "") -> Report:
    """Everything but the per-prompt browser (`add_pairs`): the leaderboards, language gap and
    agreements, all the plots need, so they can be drawn while the answers are put in order."""
    rows, judgments = loaded.rows, loaded.judgments
    main_judge = pick_judge(loaded.judges, judge, loaded.counts)
    runs = {r.dataset: r.dataset_version for r in store.runs()}
    gaps = [asdict(g) for g in language_gap.compute(store, rows, judgments) if g.judge == main_judge]
    agreement = source_agreement(rows, judgments, main_judge) if main_judge else []
    review = human_review_summary(store)
    # last: the facts may still be matching apart
    boards = leaderboard.tables(store, run_id=loaded.run_id, loaded=(rows, judgments), stated=loaded.stated.result())
    return Report(
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        source=source,
        run_id=loaded.run_id,
        judge=main_judge,
        judges=loaded.judges,
        models=sorted({r.model for r in rows}),
        langs=lang_order([r.lang for r in rows]),
        categories=sorted({r.category for r in rows if r.kind == "sensitive"}),
        datasets=sorted({(r.dataset, runs.get(r.dataset, "")) for r in rows}),
        leaderboard=boards.overall,
        by_category=boards.by_category,
        pairs=[],
        status_counts={},
        human_review=review,
        language_gap=gaps,
        source_agreement=agreement,
    )


def add_pairs(report: Report, loaded: Loaded) -> None:
    """Fill `report.pairs` (every sensitive pair's answers, per model and language) and `status_counts`."""
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    for r in loaded.rows:
        if r.kind != "sensitive":
            continue
        g = grouped.setdefault((r.dataset, r.pair_id), {"category": r.category, "prompts": {}, "answers": {}})
        g["prompts"].setdefault(r.lang, r.prompt_text)
        g["answers"].setdefault((r.model, r.lang), []).append(
            answer_view(r, loaded.judgments, loaded.judges, report.judge)
        )
    statuses: list[str] = []
    for (dataset, pair_id), g in sorted(grouped.items(), key=lambda kv: (kv[1]["category"], kv[0])):
        answered = {m for m, _ in g["answers"]}
        model_rows = []
        for m in (m for m in report.models if m in answered):
            cells = [Cell(lang, _by_sample(g["answers"].get((m, lang), []))) for lang in report.langs]
            statuses.extend(a.status for c in cells for a in c.answers)
            model_rows.append(ModelRow(m, cells))
        report.pairs.append(PairView(dataset, pair_id, g["category"], g["prompts"], model_rows))
    status_counts = Counter(statuses)  # once: Counter.update per cell cost more than the counting
    report.status_counts = {s: status_counts[s] for s in STATUSES if status_counts[s]}


def _by_sample(answers: list[AnswerView]) -> list[AnswerView]:
    """A cell's answers in sample order (most cells hold one: no sort)."""
    return sorted(answers, key=lambda a: a.sample) if len(answers) > 1 else answers


# Judges whose verdicts came with imported answers (importers: SpeechMap's own LLM judges).
SOURCE_JUDGE_PREFIX = "speechmap:"


def source_agreement(
    rows: Sequence[ResponseRow], judgments: dict[tuple[str, str], JudgmentRow], judge: str
) -> list[dict[str, Any]]:
    """Per imported judge and model (and over all models): Cohen's kappa between `judge` and the verdicts
    the answers were imported with, on three classes (SpeechMap's EVASIVE covers our evasive and
    state_aligned, so state_aligned counts as evasive here)."""

    def three(v: str) -> str:
        return "evasive" if v == "state_aligned" else v

    sources = sorted({j for (_, j) in judgments if j.startswith(SOURCE_JUDGE_PREFIX)})
    out: list[dict[str, Any]] = []
    for src in sources:
        pairs: dict[str, list[tuple[str, str]]] = {}
        for r in rows:
            a, b = judgments.get((r.key, judge)), judgments.get((r.key, src))
            if a is None or b is None or a.verdict is None or b.verdict is None:
                continue
            pairs.setdefault(r.model, []).append((three(b.verdict), three(a.verdict)))
        everything = [p for ps in pairs.values() for p in ps]
        for model, ps in [("(all models)", everything), *sorted(pairs.items())]:
            truth, pred = [p[0] for p in ps], [p[1] for p in ps]
            out.append(
                {
                    "source": src,
                    "model": model,
                    "n": len(ps),
                    "kappa": cohen_kappa(truth, pred),
                    "agreement": sum(t == p for t, p in ps) / len(ps) if ps else math.nan,
                }
            )
    return out


def to_json(value: Any) -> str:
    """Pretty JSON for raw judge outputs that happen to be JSON; anything else is returned as is."""
    try:
        return json.dumps(json.loads(value), ensure_ascii=False, indent=2)
    except (TypeError, ValueError):
        return str(value)
