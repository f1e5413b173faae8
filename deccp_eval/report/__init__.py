"""The static HTML report, its plots and model comparisons.

Everything heavy (jinja2, matplotlib) is imported inside the functions, so importing this package
from the CLI costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from deccp_eval.report.compare import Comparison
    from deccp_eval.store import Store


@dataclass
class ReportFiles:
    """What `write_report` wrote, so callers can print the paths."""

    index: Path
    plots: list[Path] = field(default_factory=list)
    comparison: "Comparison | None" = None


def write_report(store: "Store", out_dir: Path, *, run_id: str | None = None, judge: str | None = None,
                 compare: Sequence[str] | None = None, auto_compare: bool = True, plots_dir: Path | None = None,
                 source: str = "") -> ReportFiles:
    """Collect, plot and render: `out_dir/index.html` (self-contained) plus PNGs in `plots_dir`.

    A comparison section is added for `compare=(A, B)`, or automatically when the store holds exactly
    two models and `auto_compare` is on (see `compare.auto_pair` for the order).
    """
    from deccp_eval.report import compare as compare_mod
    from deccp_eval.report import data, plots, render

    report = data.collect(store, run_id=run_id, judge=judge, source=source)
    pair = tuple(compare) if compare else (compare_mod.auto_pair(report.models) if auto_compare else None)
    if pair:
        report.comparison = compare_mod.compare(store, pair[0], pair[1], judge=report.judge, run_id=run_id)
    images = plots.make_all(report)
    written: list[Path] = []
    if plots_dir is not None:
        plots_dir.mkdir(parents=True, exist_ok=True)
        for name, png in images.items():
            path = plots_dir / name
            path.write_bytes(png)
            written.append(path)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = out_dir / "index.html"
    index.write_text(render.render(report, images), encoding="utf-8")
    return ReportFiles(index=index, plots=written, comparison=report.comparison)


def report_db(db: Path, out_dir: Path, *, plots_dir: Path | None = None, run_id: str | None = None,
              judge: str | None = None, compare: Sequence[str] | None = None) -> ReportFiles:
    """`write_report` on a store file, for callers (like the demo) that hold a path, not a Store;
    plots go beside the store and its CSVs unless `plots_dir` says otherwise."""
    from deccp_eval.store import Store

    with Store(db) as store:
        return write_report(store, out_dir, run_id=run_id, judge=judge, compare=compare,
                            plots_dir=db.parent if plots_dir is None else plots_dir, source=db.name)
