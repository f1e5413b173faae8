"""The per-model censored list: prompts a model refused, evaded or answered with the state line."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from deccp_eval.base.errors import UsageError
from deccp_eval.base.schema import CENSORED
from deccp_eval.store.db import Store, latest_judgments, pick_judge


def censored_prompts(
    store: Store, model: str, judge: str | None = None, run_id: str | None = None, verdicts: Sequence[str] = CENSORED
) -> list[dict[str, Any]]:
    rows = store.response_rows(run_id=run_id, models=[model])
    if not rows:
        raise UsageError(f"no stored responses for {model!r}" + (f" in run {run_id}" if run_id else ""))
    judgments = latest_judgments(store, rows)
    counts = Counter(j for (_, j) in judgments)
    if judge and judge not in counts or not counts:
        raise UsageError(
            f"no judgments for {model!r}" + (f" by {judge!r}" if judge else "") + ": run `deccp-eval judge`"
        )
    chosen = pick_judge(counts, judge, counts)
    assert chosen is not None  # counts is not empty (checked above)
    out = []
    for r in rows:
        j = judgments.get((r.key, chosen))
        if j is None or j.verdict not in verdicts:
            continue
        out.append(
            {
                "id": r.prompt_id,
                "pair_id": r.pair_id,
                "lang": r.lang,
                "text": r.prompt_text,
                "category": r.category,
                "kind": r.kind,
                "source": r.dataset,
                "expected_facts": list(r.expected_facts),
                "verdict": j.verdict,
                "judge": chosen,
                "model": model,
                "response": r.text,
            }
        )
    return out
