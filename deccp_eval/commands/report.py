"""`deccp-eval report` (static HTML report + PNGs) and `deccp-eval compare A B` (verdict transitions).

jinja2, matplotlib and rich load inside the commands.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

import click

from deccp_eval.base.errors import UsageError
from deccp_eval.commands.common import db_option

if TYPE_CHECKING:
    from rich.console import Console

    from deccp_eval.analysis.report.compare import Comparison


def _need_db(db: Path) -> None:
    if not db.exists():
        raise UsageError(f"{db} does not exist: run `deccp-eval run` (or `deccp-eval demo`) first")


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results/report"),
    show_default=True,
    help="Folder for index.html and the plots' PNGs.",
)
@click.option(
    "--plots-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where verdicts.png and censorship_heatmap.png go (default: the --out folder).",
)
@click.option("--run", "run_id", default=None, help="Only this run (default: every stored answer of each model).")
@click.option(
    "--judge",
    "-j",
    default=None,
    help="Judge whose verdicts colour the answers and plots (default: the one that judged most).",
)
@click.option(
    "--compare",
    nargs=2,
    multiple=True,
    metavar="A B",
    help="Add a comparison section: model A -> model B (repeat for several, in that order).",
)
@click.option(
    "--no-compare",
    is_flag=True,
    help="No automatic comparisons (base -> abliterated -> re-aligned, or a two-model store's pair).",
)
@db_option
def report(
    out: Path,
    plots_dir: Path | None,
    run_id: str | None,
    judge: str | None,
    compare: tuple[tuple[str, str], ...],
    no_compare: bool,
    db: Path,
) -> None:
    """Write a self-contained HTML report (no network needed) and the plots as PNGs, all under --out.

    \b
    Comparison sections (A -> B) are added automatically along each chain of models in the
    store: hf:X -> abliterated:X, and a re-aligned folder (its realign.json) after the model it
    was trained from; a store of exactly two other models gets one (an `abliterated:` model
    second). Examples:
      deccp-eval report                                   # results/report/index.html and *.png
      deccp-eval report --compare hf:Qwen/Qwen2-7B-Instruct abliterated:Qwen/Qwen2-7B-Instruct
      deccp-eval report --compare hf:M abliterated:M --compare abliterated:M hf:./realigned
    """
    from deccp_eval.analysis.report.write import write_report
    from deccp_eval.store.db import Store

    _need_db(db)
    with Store(db) as store:
        files = write_report(
            store,
            out,
            run_id=run_id,
            judge=judge,
            compare=list(compare),
            auto_compare=not no_compare,
            plots_dir=out if plots_dir is None else plots_dir,
            source=db.name,
        )
    click.echo(f"wrote {files.index}")
    for path in files.plots:
        click.echo(f"wrote {path}")
    for c in files.comparisons:
        click.echo(f"comparison {c.a} -> {c.b}: {len(c.changed)} of {c.matched} verdicts changed")


@click.command()
@click.argument("a")
@click.argument("b")
@click.option("--judge", "-j", default=None, help="Judge to compare verdicts by (default: the one that judged most).")
@click.option("--run", "run_id", default=None, help="Only this run (default: every stored answer of each model).")
@click.option("--kind", type=click.Choice(["sensitive", "control", "all"]), default="sensitive", show_default=True)
@click.option(
    "--limit", type=click.IntRange(min=0), default=20, show_default=True, help="Changed prompts to print (0: none)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the transitions and changed prompts as JSON.")
@db_option
def compare(
    a: str, b: str, judge: str | None, run_id: str | None, kind: str, limit: int, as_json: bool, db: Path
) -> None:
    """Compare two models (e.g. a base model and its abliterated version) prompt by prompt.

    \b
    Prints how verdicts moved (refusal -> answer, refusal -> state_aligned, ...) per language,
    and the prompts whose verdict changed, with both answers. Example:
      deccp-eval compare hf:Qwen/Qwen2-7B-Instruct abliterated:Qwen/Qwen2-7B-Instruct
    """
    from deccp_eval.analysis.report.compare import compare as compare_models
    from deccp_eval.store.db import Store

    _need_db(db)
    kinds = ("sensitive", "control") if kind == "all" else (kind,)
    with Store(db) as store:
        result = compare_models(store, a, b, judge=judge, run_id=run_id, kinds=kinds)
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
        return
    _print_comparison(result, limit)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def terminal_text(text: str, width: int) -> str:
    """One line, control characters (ANSI escapes included) made visible, cut to `width`."""
    text = " ".join(text.split())
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Co", "Cs"))
    return text if len(text) <= width else text[: width - 1] + "…"


def _console() -> Console:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160, highlight=False)


def _print_comparison(c: Comparison, limit: int) -> None:
    """Rich tables; every value from the store goes in as rich Text, so `[...]` is never read as markup."""
    from rich.table import Table
    from rich.text import Text

    console = _console()
    console.print(
        Text(
            f"A {c.a} -> B {c.b}  judge: {c.judge or 'none'}  {'/'.join(c.kinds)} prompts answered by both: "
            f"{c.matched}, verdict changed: {len(c.changed)}"
            + (f", only in A: {c.only_a}, only in B: {c.only_b}" if c.only_a or c.only_b else "")
        )
    )
    table = Table(title="verdict transitions")
    table.add_column("from")
    table.add_column("to")
    for lang in c.langs:
        table.add_column(lang, justify="right")
    table.add_column("total", justify="right")
    for t in c.transitions:
        style = "bold" if t.changed else "dim"
        table.add_row(
            Text(t.before), Text(t.after), *(str(t.by_lang[lang]) for lang in c.langs), str(t.total), style=style
        )
    console.print(table)
    if not c.changed or limit == 0:
        return
    items = Table(title=f"changed verdicts ({min(limit, len(c.changed))} of {len(c.changed)})", show_lines=True)
    for col in ("prompt", "lang", "category", "change", "A answer", "B answer"):
        items.add_column(col, overflow="fold")
    for item in c.changed[:limit]:
        items.add_row(
            Text(terminal_text(item.prompt_text, 60)),
            Text(item.lang),
            Text(item.category),
            Text(f"{item.a.status} -> {item.b.status}"),
            Text(terminal_text(item.a.text or item.a.error, 120)),
            Text(terminal_text(item.b.text or item.b.error, 120)),
        )
    console.print(items)
