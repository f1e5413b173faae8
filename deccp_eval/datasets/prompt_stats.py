"""Counts of a prompt set by category x language x kind."""

from __future__ import annotations

from collections import Counter
from typing import Any

from deccp_eval.datasets.loading import Dataset


def counts(data: Dataset) -> dict[str, Any]:
    c = Counter((p.category, p.lang, p.kind) for p in data.prompts)
    langs = sorted({p.lang for p in data.prompts})
    kinds = sorted({p.kind for p in data.prompts})
    cats = sorted({p.category for p in data.prompts})
    return {
        "dataset": data.name,
        "version": data.version,
        "total": len(data.prompts),
        "pairs": len({p.pair_id for p in data.prompts}),
        "langs": langs,
        "kinds": kinds,
        "by_category": {
            cat: {f"{kind}/{lang}": c[(cat, lang, kind)] for kind in kinds for lang in langs} for cat in cats
        },
    }


def table(result: dict[str, Any]) -> str:
    cols = [f"{k}/{lang}" for k in result["kinds"] for lang in result["langs"]]
    width = max([len("category")] + [len(c) for c in result["by_category"]])
    lines = [
        f"{result['dataset']} {result['version']}: {result['total']} prompts in {result['pairs']} pairs",
        "category".ljust(width) + "  " + "  ".join(c.rjust(max(len(c), 5)) for c in cols),
    ]
    totals: Counter[str] = Counter()
    for cat, row in result["by_category"].items():
        lines.append(cat.ljust(width) + "  " + "  ".join(str(row[c]).rjust(max(len(c), 5)) for c in cols))
        totals.update(row)
    lines.append("total".ljust(width) + "  " + "  ".join(str(totals[c]).rjust(max(len(c), 5)) for c in cols))
    return "\n".join(lines)
