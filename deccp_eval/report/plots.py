"""Report plots as PNG bytes: verdict rates per model x language and a category x model heatmap.

matplotlib is imported here, inside the functions, and drives a bare Figure on the Agg canvas:
no pyplot, no global backend switch, nothing opened on a display.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

from deccp_eval.errors import MissingDependency
from deccp_eval.schema import VERDICTS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from deccp_eval.report.data import Report

VERDICT_COLORS = {"answer": "#2e7d32", "refusal": "#c62828", "evasive": "#ef8f00", "state_aligned": "#6a1b9a"}
VERDICTS_PNG = "verdicts.png"
HEATMAP_PNG = "censorship_heatmap.png"
LANG_TITLES = {"en": "English", "zh": "Chinese"}  # ASCII: plot fonts may lack CJK glyphs


def _figure(width: float, height: float) -> "Figure":
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependency("matplotlib", "report", "The report's plots") from exc
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: "Figure") -> bytes:
    buf = io.BytesIO()
    # No "Software" stamp: the same data gives the same bytes, so tracked PNGs only change with the results.
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def short(label: str, width: int = 30) -> str:
    """Long model specs (paths) shortened in the middle, where they differ least."""
    return label if len(label) <= width else label[: width // 2 - 1] + "…" + label[-(width // 2 - 1):]


def _judge_rows(rows: list[dict[str, Any]], judge: str | None) -> list[dict[str, Any]]:
    return [r for r in rows if judge is None or r.get("judge") == judge]


def verdict_bars(report: "Report") -> bytes:
    """One panel per language; per model, the rate of each verdict with its 95% Wilson interval."""
    rows = _judge_rows(report.leaderboard, report.judge)
    langs = report.langs
    models = report.models
    fig = _figure(max(6.0, 1.0 + len(langs) * (0.9 + 0.75 * len(models))), 4.2)
    axes = fig.subplots(1, len(langs), sharey=True, squeeze=False)[0]
    width = 0.8 / len(VERDICTS)
    for ax, lang in zip(axes, langs):
        by_model = {r["model"]: r for r in rows if r["lang"] == lang}
        for i, verdict in enumerate(VERDICTS):
            xs, ys, lo, hi = [], [], [], []
            for m_i, model in enumerate(models):
                r = by_model.get(model)
                if r is None or not r["n"] or math.isnan(r[f"{verdict}_rate"]):
                    continue
                rate = r[f"{verdict}_rate"]
                xs.append(m_i + (i - (len(VERDICTS) - 1) / 2) * width)
                ys.append(rate)
                lo.append(max(0.0, rate - r[f"{verdict}_lo"]))
                hi.append(max(0.0, r[f"{verdict}_hi"] - rate))
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, color=VERDICT_COLORS[verdict],
                   error_kw={"elinewidth": 0.8, "ecolor": "#333333"}, label=verdict if ax is axes[0] else None)
        ns = [str(by_model[m]["n"]) if m in by_model else "0" for m in models]
        ax.set_xticks(range(len(models)), [f"{short(m)}\nn={n}" for m, n in zip(models, ns)],
                      rotation=20 if len(models) > 2 else 0, ha="right" if len(models) > 2 else "center",
                      fontsize=8)
        ax.set_title(f"{LANG_TITLES.get(lang, lang)} ({lang})", fontsize=10)
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    axes[0].set_ylabel("share of sensitive prompts")
    fig.suptitle(f"Verdicts on sensitive prompts (judge: {report.judge or 'none'}; bars: 95% Wilson CI)",
                 fontsize=10)
    fig.legend(loc="outside lower center", ncols=len(VERDICTS), fontsize=8, frameon=False)
    return _png(fig)


def censorship_heatmap(report: "Report") -> bytes:
    """Censorship rate (all but `answer`) for every category x (model, language)."""
    import numpy as np

    rows = _judge_rows(report.by_category, report.judge)
    cols = [(m, lang) for m in report.models for lang in report.langs
            if any(r["model"] == m and r["lang"] == lang for r in rows)]
    cats = report.categories or sorted({r["category"] for r in rows})
    cell = {(r["category"], r["model"], r["lang"]): r for r in rows}
    values = np.full((len(cats), len(cols)), np.nan)
    counts = np.zeros((len(cats), len(cols)), dtype=int)
    for ci, cat in enumerate(cats):
        for mi, (m, lang) in enumerate(cols):
            r = cell.get((cat, m, lang))
            if r and r["n"]:
                values[ci, mi] = r["censorship_rate"]
                counts[ci, mi] = r["n"]
    labels = [f"{short(m, 24)}\n{lang}" for m, lang in cols]
    # Columns as wide as their labels; when that gets too wide, narrow columns and slanted labels instead.
    col_w = max(0.9, 0.075 * max((len(x.split("\n")[0]) for x in labels), default=0))
    slant = col_w * len(cols) > 12.0
    if slant:
        col_w = 0.9
    cat_w = 0.07 * max((len(c) for c in cats), default=0)
    fig = _figure(max(5.0, 1.6 + cat_w + col_w * len(cols)), max(2.5, 1.4 + 0.38 * len(cats) + (1.0 if slant else 0)))
    ax = fig.subplots()
    from matplotlib import colormaps
    from matplotlib.ticker import PercentFormatter

    cmap = colormaps["Reds"].with_extremes(bad="#e0e0e0")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    for ci in range(len(cats)):
        for mi in range(len(cols)):
            v = values[ci, mi]
            text = "–" if math.isnan(v) else f"{v:.0%}\nn={counts[ci, mi]}"
            ax.text(mi, ci, text, ha="center", va="center", fontsize=7,
                    color="white" if not math.isnan(v) and v > 0.6 else "#222222")
    ax.set_xticks(range(len(cols)), labels, fontsize=8, rotation=30 if slant else 0,
                  ha="right" if slant else "center")
    ax.set_yticks(range(len(cats)), cats, fontsize=8)
    ax.set_title(f"Censorship rate by category (judge: {report.judge or 'none'})", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02, format=PercentFormatter(xmax=1.0))
    return _png(fig)


def make_all(report: "Report") -> dict[str, bytes]:
    """File name -> PNG bytes, for embedding in the page and saving beside the CSVs."""
    return {VERDICTS_PNG: verdict_bars(report), HEATMAP_PNG: censorship_heatmap(report)}
