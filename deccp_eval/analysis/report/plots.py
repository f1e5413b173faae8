"""Report plots as PNG bytes: verdict rates per model x language and a category x model heatmap.

matplotlib is imported here, inside the functions, and drives a bare Figure on the Agg canvas:
no pyplot, no global backend switch, nothing opened on a display.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, Literal

from deccp_eval.analysis.report.data import Report
from deccp_eval.base.errors import MissingDependency
from deccp_eval.base.schema import VERDICTS

if TYPE_CHECKING:
    from matplotlib.figure import Figure


VERDICT_COLORS = {"answer": "#2e7d32", "refusal": "#c62828", "evasive": "#ef8f00", "state_aligned": "#6a1b9a"}
VERDICTS_PNG = "verdicts.png"
HEATMAP_PNG = "censorship_heatmap.png"
LANG_TITLES = {"en": "English", "zh": "Chinese"}  # ASCII: plot fonts may lack CJK glyphs


def preload() -> None:
    """Import matplotlib now (~0.5 s), e.g. while this process waits on other work anyway, so a
    child forked later to draw (`base.forked`) starts drawing at once. Without matplotlib: nothing
    (drawing raises MissingDependency as usual)."""
    try:
        import matplotlib.backends.backend_agg  # noqa: F401
        import matplotlib.figure  # noqa: F401
        import matplotlib.ticker  # noqa: F401
    except ImportError:
        pass


def _figure(width: float, height: float, layout: Literal["constrained", "tight"] | None = "constrained") -> Figure:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependency("matplotlib", "report", "The report's plots") from exc
    fig = Figure(figsize=(width, height), dpi=100, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    # No "Software" stamp: the same data gives the same bytes, so tracked PNGs only change with the results.
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def short(label: str, width: int = 30) -> str:
    """Long model specs (paths) shortened in the middle, where they differ least."""
    return label if len(label) <= width else label[: width // 2 - 1] + "…" + label[-(width // 2 - 1) :]


def _judge_rows(rows: list[dict[str, Any]], judge: str | None) -> list[dict[str, Any]]:
    return [r for r in rows if judge is None or r.get("judge") == judge]


# Beyond this many models side-by-side bars and annotated cells stop being readable (and a
# 100-model figure would be 15,000 px wide): the plots turn to one row per model instead.
MANY_MODELS = 12


def verdict_stack(report: Report) -> bytes:
    """Many models: one panel per language, one stacked bar of verdict rates per model (the
    intervals are in the leaderboard table)."""
    rows = _judge_rows(report.leaderboard, report.judge)
    models, langs = report.models, report.langs
    # Fixed margins in inches: constrained layout measures every tick label, slow with 100+ of them.
    label_w, width, height = (
        0.3 + 0.065 * max(len(short(m)) for m in models),
        3.2 * len(langs),
        1.2 + 0.16 * len(models),
    )
    fig = _figure(label_w + width + 0.4, height, layout=None)
    fig.subplots_adjust(
        left=label_w / (label_w + width + 0.4),
        right=1 - 0.4 / (label_w + width + 0.4),
        top=1 - 0.75 / height,
        bottom=0.6 / height,
        wspace=0.08,
    )
    axes = fig.subplots(1, len(langs), sharey=True, squeeze=False)[0]
    for ax, lang in zip(axes, langs):
        by_model = {r["model"]: r for r in rows if r["lang"] == lang}
        left = [0.0] * len(models)
        for verdict in VERDICTS:
            widths = [
                0.0 if m not in by_model or not by_model[m]["n"] else by_model[m][f"{verdict}_rate"] for m in models
            ]
            ax.barh(
                range(len(models)),
                widths,
                left=left,
                height=0.8,
                color=VERDICT_COLORS[verdict],
                label=verdict if ax is axes[0] else None,
            )
            left = [a + b for a, b in zip(left, widths)]
        ax.set_title(f"{LANG_TITLES.get(lang, lang)} ({lang})", fontsize=10)
        ax.set_xlim(0, 1)
        ax.set_ylim(len(models) - 0.5, -0.5)  # first model on top
    axes[0].set_yticks(range(len(models)), [short(m) for m in models], fontsize=7)
    fig.suptitle(
        f"Verdicts on sensitive prompts (judge: {report.judge or 'none'}; intervals in the table)",
        fontsize=10,
        y=1 - 0.15 / height,
    )
    fig.legend(loc="lower center", ncols=len(VERDICTS), fontsize=8, frameon=False)
    return _png(fig)


def verdict_bars(report: Report) -> bytes:
    """One panel per language; per model, the rate of each verdict with its 95% Wilson interval."""
    rows = _judge_rows(report.leaderboard, report.judge)
    langs = report.langs
    models = report.models
    if len(models) > MANY_MODELS:
        return verdict_stack(report)
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
            ax.bar(
                xs,
                ys,
                width,
                yerr=[lo, hi],
                capsize=2,
                color=VERDICT_COLORS[verdict],
                error_kw={"elinewidth": 0.8, "ecolor": "#333333"},
                label=verdict if ax is axes[0] else None,
            )
        ns = [str(by_model[m]["n"]) if m in by_model else "0" for m in models]
        ax.set_xticks(
            range(len(models)),
            [f"{short(m)}\nn={n}" for m, n in zip(models, ns)],
            rotation=20 if len(models) > 2 else 0,
            ha="right" if len(models) > 2 else "center",
            fontsize=8,
        )
        ax.set_title(f"{LANG_TITLES.get(lang, lang)} ({lang})", fontsize=10)
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    axes[0].set_ylabel("share of sensitive prompts")
    fig.suptitle(f"Verdicts on sensitive prompts (judge: {report.judge or 'none'}; bars: 95% Wilson CI)", fontsize=10)
    fig.legend(loc="outside lower center", ncols=len(VERDICTS), fontsize=8, frameon=False)
    return _png(fig)


def censorship_heatmap(report: Report) -> bytes:
    """Censorship rate (all but `answer`) for every category x (model, language)."""
    import numpy as np

    rows = _judge_rows(report.by_category, report.judge)
    present = {(r["model"], r["lang"]) for r in rows}
    cols = [(m, lang) for m in report.models for lang in report.langs if (m, lang) in present]
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
    if len(report.models) > MANY_MODELS:
        return _heatmap_rows(values, [f"{short(m, 30)} {lang}" for m, lang in cols], cats, report.judge)
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
            ax.text(
                mi,
                ci,
                text,
                ha="center",
                va="center",
                fontsize=7,
                color="white" if not math.isnan(v) and v > 0.6 else "#222222",
            )
    ax.set_xticks(range(len(cols)), labels, fontsize=8, rotation=30 if slant else 0, ha="right" if slant else "center")
    ax.set_yticks(range(len(cats)), cats, fontsize=8)
    ax.set_title(f"Censorship rate by category (judge: {report.judge or 'none'})", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02, format=PercentFormatter(xmax=1.0))
    return _png(fig)


def _heatmap_rows(values: Any, rows: list[str], cats: list[str], judge: str | None) -> bytes:
    """Many models: (model, language) as rows, categories as columns, colour only (no cell text)."""
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.ticker import PercentFormatter

    label_w, width, height = 0.3 + 0.05 * max(len(r) for r in rows), 0.3 * len(cats), 2.0 + 0.11 * len(rows)
    total = label_w + width + 1.2
    fig = _figure(total, height, layout=None)
    fig.subplots_adjust(left=label_w / total, right=1 - 1.2 / total, top=1 - 0.4 / height, bottom=1.4 / height)
    ax = fig.subplots()
    cmap = colormaps["Reds"].with_extremes(bad="#e0e0e0")
    image = ax.imshow(
        np.ma.masked_invalid(values.T), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest"
    )
    ax.set_xticks(range(len(cats)), cats, fontsize=7, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows, fontsize=5)
    ax.set_title(f"Censorship rate by category (judge: {judge or 'none'})", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02, format=PercentFormatter(xmax=1.0))
    return _png(fig)


GAP_PNG = "language_gap.png"


def language_gap(report: Report) -> bytes:
    """One row per model: the paired gap ZH - EN in censorship with its 95% interval, largest first."""
    gaps = sorted(report.language_gap, key=lambda g: g["gap"])
    height = 1.2 + 0.22 * len(gaps)
    fig = _figure(7.0, height)
    ax = fig.subplots()
    ys = range(len(gaps))
    for y, g in zip(ys, gaps):
        color = "#c62828" if g["gap_lo"] > 0 else "#1565c0" if g["gap_hi"] < 0 else "#757575"
        ax.plot([g["gap_lo"], g["gap_hi"]], [y, y], color=color, linewidth=1.5)
        ax.plot([g["gap"]], [y], "o", color=color, markersize=4)
    ax.axvline(0.0, color="#000", linewidth=0.8)
    ax.set_yticks(list(ys), [short(g["model"], 36) for g in gaps], fontsize=6)
    ax.set_xlim(-1, 1)
    ax.xaxis.set_major_formatter(_percent())
    ax.set_xlabel("censorship in Chinese minus English, same questions (95% paired interval)", fontsize=8)
    ax.set_title(f"Language gap (judge: {report.judge or 'none'}); red: more censored in Chinese", fontsize=9)
    return _png(fig)


def _percent() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0)


def drawers(report: Report) -> dict[str, Callable[[Report], bytes]]:
    """The plots this report gets: file name -> the function drawing it, in display order."""
    out: dict[str, Callable[[Report], bytes]] = {VERDICTS_PNG: verdict_bars, HEATMAP_PNG: censorship_heatmap}
    if report.language_gap:
        out[GAP_PNG] = language_gap
    return out


def make_all(report: Report, only: Collection[str] | None = None) -> dict[str, bytes]:
    """File name -> PNG bytes, for embedding in the page and saving beside the CSVs (`only`: those
    of them, so two processes can share the drawing)."""
    return {name: draw(report) for name, draw in drawers(report).items() if only is None or name in only}
