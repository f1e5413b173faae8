"""Render the report page: one self-contained index.html (inline CSS/JS, plots as data: URIs).

Model output is hostile input. The template is rendered with autoescape on, model text only ever
lands in element text or quoted attributes, the answers' JSON block holds no `<`, `>` or `&`
(payload.script_json), the page script builds elements with textContent and never uses innerHTML, and a
Content-Security-Policy allows no network and only the page's own script (by hash), so even a
missed escape could neither run code nor fetch anything.
"""

from __future__ import annotations

import base64
import hashlib
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deccp_eval.analysis.report import payload
from deccp_eval.analysis.report.data import Report, to_json
from deccp_eval.analysis.report.views import STATUSES

if TYPE_CHECKING:
    import jinja2

HERE = Path(__file__).parent
TEMPLATE = "report.html.j2"  # beside this file

# Leaderboard columns: (row key, header, kind). "rate" cells show the rate with its Wilson interval.
LEADERBOARD_COLUMNS: list[tuple[str, str, str]] = [
    ("model", "model", "text"),
    ("lang", "lang", "text"),
    ("judge", "judge", "text"),
    ("n", "n", "int"),
    ("answer", "answer", "rate"),
    ("refusal", "refusal", "rate"),
    ("evasive", "evasive", "rate"),
    ("state_aligned", "state_aligned", "rate"),
    ("censorship", "censorship", "rate"),
    ("degenerate", "degenerate", "rate"),
    ("control_refusal", "over-refusal (controls)", "rate"),
    ("misinformation", "misinformation", "rate"),
    ("reasoning", "reasoning", "rate"),
    ("suppressed", "suppressed reasoning (censored)", "rate"),
    ("cut", "cut before answer", "rate"),
    ("errors", "errors", "int"),
    ("unparsed", "unparsed", "int"),
]
# Shown only when some answer carries reasoning (a store of models that never reason would show 0% columns).
REASONING_COLUMNS = ("reasoning", "suppressed", "cut")


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def pct(value: Any) -> str:
    return "–" if value is None or _is_nan(value) else f"{value:.0%}"


def fixed(value: Any) -> str:
    """Kappas and the like: three decimals, a dash when undefined."""
    return "–" if value is None or _is_nan(value) else f"{value:.3f}"


def sort_value(value: Any) -> str:
    """What a cell sorts by (data-value): numbers as plain decimals, missing as empty (sorted last)."""
    if value is None or _is_nan(value):
        return ""
    return repr(float(value)) if isinstance(value, (int, float)) else str(value)


def csp_hash(script: str) -> str:
    digest = hashlib.sha256(str(script).encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def environment() -> jinja2.Environment:
    """Autoescape is forced on: select_autoescape would not match the `.html.j2` name."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=pct, fixed=fixed, sort_value=sort_value, csp_hash=csp_hash, pretty_json=to_json)
    return env


def columns(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """Leaderboard columns, less the rate columns no row has a value for (e.g. misinformation
    without a reference judge), so the table stays readable."""
    reasoning = any((r.get("reasoning_rate") or 0) > 0 for r in rows)
    return [
        c
        for c in LEADERBOARD_COLUMNS
        if (c[2] != "rate" or any(not _is_nan(r.get(f"{c[0]}_rate", math.nan)) for r in rows))
        and (reasoning or c[0] not in REASONING_COLUMNS)
    ]


def render(report: Report, images: dict[str, bytes], text_budget: int = payload.TEXT_BUDGET) -> str:
    """The page; the per-prompt browser's answers go in as one JSON block (see payload.py)."""
    return page(report, images, browser_json(report, text_budget))


def browser_json(report: Report, text_budget: int = payload.TEXT_BUDGET) -> str:
    """The per-prompt browser's data block (the bulk of the page's work, and no plot in it)."""
    data = payload.build(report, list(STATUSES), text_budget)
    data["multiSample"] = any(len(c.answers) > 1 for p in report.pairs for row in p.rows for c in row.cells)
    return payload.script_json(data)


def page(report: Report, images: dict[str, bytes], data_json: str) -> str:
    """The page around `browser_json`'s block, with the plots inline."""
    return (
        environment()
        .get_template(TEMPLATE)
        .render(
            report=report,
            columns=columns(report.leaderboard),
            statuses=[s for s in STATUSES if s in report.status_counts],
            images={name: data_uri(png) for name, png in images.items()},
            data_json=data_json,
        )
    )
