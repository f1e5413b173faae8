"""What the report shows of one stored answer: its status (a verdict, or why there is none) and every
judge's reading of it. The page (`data`) and the model comparisons (`compare`) both build on these."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from deccp_eval.analysis import leaderboard
from deccp_eval.base.schema import VERDICTS
from deccp_eval.store.db import Store, latest_judgments
from deccp_eval.store.rows import JudgmentRow, ResponseRow

# Labels an answer can carry besides the four verdicts, so nothing is silently dropped from view.
UNPARSED, UNJUDGED, ERROR = "unparsed", "unjudged", "error"
STATUSES: tuple[str, ...] = (*VERDICTS, UNPARSED, UNJUDGED, ERROR)
LANG_NAMES = {"en": "English", "zh": "中文", "zh-Hant": "繁體中文"}


def lang_order(langs: Sequence[str]) -> list[str]:
    """English first, Chinese second, the rest alphabetically: the order readers expect side by side."""
    rank = {"en": 0, "zh": 1}
    return sorted(set(langs), key=lambda lang: (rank.get(lang, 2), lang))


@dataclass(slots=True)  # slots: tens of thousands per report, built and read once each
class JudgmentView:
    judge: str
    status: str
    accuracy: str | None
    misinformation: bool | None
    rationale: str
    raw: str
    confidence: float | None = None
    decided_by: str | None = None


@dataclass(slots=True)
class AnswerView:
    """One stored response with its verdict under the report's judge and every judge's reasoning."""

    model: str
    lang: str
    prompt_id: str
    sample: int
    text: str
    reasoning: str
    error: str
    status: str
    judgments: list[JudgmentView] = field(default_factory=list)
    degenerate: str = ""  # deccp_eval.base.degenerate's reason, shown beside the verdict


def judgment_view(j: JudgmentRow) -> JudgmentView:
    ok = j.parse_status != "unparsed" and j.verdict is not None
    return JudgmentView(
        judge=j.judge,
        status=j.verdict if ok and j.verdict is not None else UNPARSED,
        accuracy=j.accuracy,
        misinformation=j.misinformation,
        rationale=j.rationale or "",
        raw=j.raw or "",
        confidence=j.confidence,
        decided_by=j.decided_by,
    )


def answer_view(
    row: ResponseRow, judgments: dict[tuple[str, str], JudgmentRow], judges: Sequence[str], judge: str | None
) -> AnswerView:
    """A response row plus its judgments; `status` is the verdict of `judge`, or why there is none."""
    found = (judgments.get((row.key, j)) for j in judges)
    views = [judgment_view(j) for j in found if j is not None]
    if row.error is not None:
        status = ERROR
    else:
        mine = next((v for v in views if v.judge == judge), None)
        status = mine.status if mine else UNJUDGED
    return AnswerView(
        model=row.model,
        lang=row.lang,
        prompt_id=row.prompt_id,
        sample=row.sample,
        text=row.text or "",
        reasoning=row.reasoning or "",
        error=row.error or "",
        status=status,
        judgments=views,
        degenerate=leaderboard.degenerate_reason(row) or "",
    )


def load_judgments(
    store: Store, rows: Sequence[ResponseRow]
) -> tuple[dict[tuple[str, str], JudgmentRow], list[str], Counter[str]]:
    """Newest judgment per (response, judge), the judges present, and how many responses each judged."""
    judgments = latest_judgments(store, rows)
    counts: Counter[str] = Counter(j for (_, j) in judgments)
    return judgments, sorted(counts), counts
