"""Judge and gold prompt templates: rendering with neutralised data, hashing, output parsing."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from deccp_eval.base.schema import ACCURACIES, VERDICTS, canonical_hash
from deccp_eval.datasets.builtin import TEMPLATES

DELIMITERS = ("question", "response", "reference")
_TAG = re.compile(r"<\s*(/?)\s*(" + "|".join(DELIMITERS) + r")\s*>", re.IGNORECASE)
_LABEL = re.compile(r"\b(verdict|accuracy|misinformation)\s*[:：]", re.IGNORECASE)


def neutralise(text: str) -> str:
    """Make data unable to close our delimiters or forge a final label line."""
    text = _TAG.sub(lambda m: f"[{m.group(1)}{m.group(2).lower()}]", text)
    return _LABEL.sub(lambda m: f"{m.group(1)} (quoted):", text)


@cache
def _env() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def source(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def _clean(value: Any) -> Any:
    """Neutralise every string inside strings, lists and dicts (few-shot examples are dicts)."""
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, list):
        return [_clean(x) for x in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def template_hash(*names: str) -> str:
    return canonical_hash({n: source(n) for n in names})[:16]


def render(name: str, **data: Any) -> str:
    """Render a template; every string argument is neutralised first."""
    clean = {k: _clean(v) for k, v in data.items()}
    return _env().get_template(name).render(**clean)


def _last_label(output: str, label: str, choices: tuple[str, ...]) -> str | None:
    """The value on the LAST line that starts with `label:`; None when that line is not a valid choice."""
    pattern = re.compile(r"^[\W_]*" + label + r"[\W_]*[:：]\s*(.*)$", re.IGNORECASE)
    for line in reversed(output.strip().splitlines()):
        m = pattern.match(line.strip())
        if m:
            value = re.sub(r"[^a-z_ ]", "", m.group(1).lower()).strip().replace(" ", "_")
            return value if value in choices else None
    return None


def parse_verdict(output: str) -> str | None:
    return _last_label(output, "verdict", VERDICTS)


def parse_accuracy(output: str) -> str | None:
    return _last_label(output, "accuracy", ACCURACIES)


def parse_misinformation(output: str) -> bool | None:
    value = _last_label(output, "misinformation", ("yes", "no", "true", "false"))
    return None if value is None else value in ("yes", "true")


def rationale(output: str) -> str:
    """The judge's reasoning: its output without the final label lines."""
    lines = [
        ln
        for ln in output.strip().splitlines()
        if not re.match(r"^[\W_]*(verdict|accuracy|misinformation)[\W_]*[:：]", ln.strip(), re.IGNORECASE)
    ]
    return "\n".join(lines).strip()
