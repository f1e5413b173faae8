"""The static HTML report, its plots and model comparisons.

Everything heavy (jinja2, matplotlib) is imported inside the functions, so importing this package
from the CLI costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from deccp_eval.analysis.report import compare as compare_mod
from deccp_eval.analysis.report import data, plots, render
from deccp_eval.analysis.report.compare import Comparison, Pairs
from deccp_eval.base.forked import Forked
from deccp_eval.store.db import Store

# The plots drawn in a forked child while the page's data is built; the others are drawn here after it.
APART = (plots.VERDICTS_PNG, plots.HEATMAP_PNG)


@dataclass
class ReportFiles:
    """What `write_report` wrote, so callers can print the paths."""

    index: Path
    plots: list[Path] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)


def write_report(
    store: Store,
    out_dir: Path,
    *,
    run_id: str | None = None,
    judge: str | None = None,
    compare: Pairs | None = None,
    auto_compare: bool = True,
    plots_dir: Path | None = None,
    source: str = "",
) -> ReportFiles:
    """Collect, plot and render: `out_dir/index.html` (self-contained) plus PNGs in `plots_dir`.

    One comparison section per pair in `compare` (a list of (A, B), or one flat (A, B)); without
    it, and with `auto_compare` on, the pairs `compare.auto_pairs` finds (base -> abliterated ->
    re-aligned, or the two models of a two-model store).
    """
    loaded = data.load(store, run_id)
    plots.preload()  # while the answers' facts are matched apart, for the plots' child to inherit
    report = data.summarise(store, loaded, judge=judge, source=source)
    # The plots need only the summary: ~3.5 s of CPU on 100 models. Two are drawn on the other core
    # meanwhile, the rest here once the page's data is built (the two sides then take about as long).
    drawing = Forked(plots.make_all, report, APART)
    data.add_pairs(report, loaded)
    if compare:
        pairs = compare_mod.as_pairs(compare)
    else:
        pairs = compare_mod.auto_pairs(report.models) if auto_compare else []
    report.comparisons = [compare_mod.compare(store, a, b, judge=report.judge, run_id=run_id) for a, b in pairs]
    data_json = render.browser_json(report)
    order = plots.drawers(report)
    drawn = {**plots.make_all(report, only=[name for name in order if name not in APART]), **drawing.result()}
    images = {name: drawn[name] for name in order}
    written: list[Path] = []
    if plots_dir is not None:
        plots_dir.mkdir(parents=True, exist_ok=True)
        for name, png in images.items():
            path = plots_dir / name
            path.write_bytes(png)
            written.append(path)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = out_dir / "index.html"
    index.write_text(render.page(report, images, data_json), encoding="utf-8")
    return ReportFiles(index=index, plots=written, comparisons=report.comparisons)


def report_db(
    db: Path,
    out_dir: Path,
    *,
    plots_dir: Path | None = None,
    run_id: str | None = None,
    judge: str | None = None,
    compare: Pairs | None = None,
) -> ReportFiles:
    """`write_report` on a store file, for callers (like the demo) that hold a path, not a Store;
    plots go beside the store and its CSVs unless `plots_dir` says otherwise."""
    with Store(db) as store:
        return write_report(
            store,
            out_dir,
            run_id=run_id,
            judge=judge,
            compare=compare,
            plots_dir=db.parent if plots_dir is None else plots_dir,
            source=db.name,
        )
