"""Regenerate the lists in docs/ARCHITECTURE.md from the code: commands, backends, judges, datasets,
modules per layer and the cache-key rules, each between `<!-- generated:NAME -->` and
`<!-- /generated:NAME -->`; the prose outside the markers is left as written.

    python scripts/gen_architecture.py          # rewrite docs/ARCHITECTURE.md (`make docs`)
    python scripts/gen_architecture.py --check  # exit 1 with a diff when it is stale

Only built-in plugins are listed (never a third-party entry point), everything sorted, no absolute
paths and no timestamps, so the output depends on the code alone. tests/test_docs.py runs `render`."""

from __future__ import annotations

import ast
import difflib
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ARCHITECTURE.md"
# The layer order lives in the architecture test that enforces it; it is read from there, not imported.
ARCH_TEST = ROOT / "tests" / "test_architecture.py"
# Top-level folders mapped into the package (pyproject's package-dir), as the reader sees them.
MAPPED = {"plugins": "deccp_eval.plugins", "judges": "deccp_eval.judges"}
# An argument that builds each composite or model-backed built-in judge without a network or a model load.
JUDGE_ARGS = {"llm": "openai:MODEL", "panel": "keyword,clf", "cascade": "keyword,clf"}

MARKER = re.compile(r"(<!-- generated:(?P<name>[a-z-]+) -->\n)(?P<body>.*?)(<!-- /generated:(?P=name) -->)", re.S)


def summary(doc: str | None) -> str:
    """The first sentence of a docstring's first paragraph, on one line."""
    para = " ".join((doc or "").strip().split("\n\n")[0].split())
    m = re.search(r"(?<=[.!?])\s+(?=[A-Z`])", para)  # a sentence's end; a colon goes on
    first = para[: m.start()] if m else para
    return first.rstrip(".:;") or "(no docstring)"


def layers() -> tuple[str, ...]:
    """LAYERS of tests/test_architecture.py, low to high."""
    for node in ast.parse(ARCH_TEST.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "LAYERS" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise SystemExit(f"{ARCH_TEST.relative_to(ROOT)}: no LAYERS tuple")


def module_doc(path: Path) -> str:
    return summary(ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))))


def _files(folder: Path) -> list[Path]:
    return sorted(
        (f for f in folder.rglob("*.py") if "__pycache__" not in f.parts),
        key=lambda f: f.relative_to(folder).as_posix(),
    )


def section_layers() -> str:
    out = ["Low to high: a module imports its own layer and the ones listed before it, never one listed after it.", ""]
    core = ROOT / "deccp_eval"
    for rank, layer in enumerate(layers()):
        single = core / f"{layer}.py"
        if single.is_file():
            out += [f"{rank}. **`deccp_eval/{layer}.py`**: {module_doc(single)}", ""]
            continue
        folder = core / layer
        init = folder / "__init__.py"
        out.append(f"{rank}. **`deccp_eval/{layer}/`**" + (f": {module_doc(init)}" if init.is_file() else ""))
        for f in _files(folder):
            rel = f.relative_to(folder).as_posix()
            if rel != "__init__.py":
                out.append(f"   - `{rel}`: {module_doc(f)}")
        out.append("")
    out.append("Above the whole core, the built-in plugins (mapped into the package by pyproject's `package-dir`):")
    out.append("")
    for folder, package in MAPPED.items():
        out.append(f"- **`{folder}/`** -> `{package}`")
        for f in _files(ROOT / folder):
            if f.name != "__init__.py":
                out.append(f"   - `{f.relative_to(ROOT / folder).as_posix()}`: {module_doc(f)}")
    out += [
        "",
        "Outside the layers, the public paths third-party plugins import (thin re-exports; the project "
        "itself imports the real modules):",
        "",
    ]
    for f in sorted(core.glob("*.py")):
        if f.name not in ("__init__.py",) and f.stem not in layers():
            out.append(f"- `deccp_eval/{f.name}`: {module_doc(f)}")
    return "\n".join(out) + "\n"


def section_commands() -> str:
    import click

    from deccp_eval import commands

    group = click.Group("deccp-eval")
    commands.register_commands(cli=group)  # the built-ins only, never a third-party plugin's

    def lines(g: click.Group, prefix: str) -> list[str]:
        out = []
        for name in sorted(g.commands):
            cmd = g.commands[name]
            out.append(f"| `{prefix}{name}` | {summary(cmd.help).replace('|', '/')} |")
            if isinstance(cmd, click.Group):
                out += lines(cmd, f"{prefix}{name} ")
        return out

    return "\n".join(["| command | what it does |", "|---|---|", *lines(group, "deccp-eval ")]) + "\n"


def _registered(kind: str) -> list[tuple[str, str, str]]:
    from deccp_eval.base import pluginmanager

    reg = getattr(pluginmanager, kind)()
    rows = []
    for name, r in sorted(reg.items()):
        if r.plugin not in pluginmanager.DEFAULT_PLUGINS:
            continue
        desc = getattr(r.obj, "description", "") or summary(r.obj.__doc__)
        rows.append((name, r.plugin, " ".join(desc.split()).replace("|", "/")))
    return rows


def _table(kind: str, title: str) -> str:
    rows = [f"| `{n}` | `{p}` | {d} |" for n, p, d in _registered(kind)]
    return "\n".join([f"| {title} | module | description |", "|---|---|---|", *rows]) + "\n"


def _capture(module: Any, fn: Callable[[], Any]) -> list[Any]:
    """The payloads `fn` hands to `module.canonical_hash`, in call order."""
    seen: list[Any] = []
    real = module.canonical_hash

    def spy(payload: Any) -> str:
        seen.append(payload)
        return real(payload)

    module.canonical_hash = spy
    try:
        fn()
    finally:
        module.canonical_hash = real
    return seen


def _shape(payload: Any, judge: Any) -> str:
    """A payload in words: its keys, or the member list a composite judge hashes."""
    members = getattr(judge, "members", None) or []
    if isinstance(payload, dict):
        parts = []
        for k in sorted(payload):
            v = payload[k]
            if members and v == [[m.id, m.template_hash] for m in members]:
                parts.append(f"`{k}` (each member's id and template_hash)")
            else:
                parts.append(f"`{k}`")
        return ", ".join(parts)
    if members and payload == [[m.id, m.template_hash] for m in members]:
        return "each member's id and template_hash"
    if members and payload == [m.settings_hash() for m in members]:
        return "each member's settings_hash"
    return f"`{type(payload).__name__}`"


def section_keys() -> str:
    import importlib

    from deccp_eval.base import schema
    from deccp_eval.judging import contract, templates
    from deccp_eval.judging.contract import make_judge

    req = [f"`{n}`" for n in schema.Request.model_fields]
    params = [f"`{n}`" for n in schema.SamplingParams.model_fields]
    optional = [f"`{n}`" for n in schema.OPTIONAL_PARAMS]
    jkey = _capture(schema, lambda: schema.judgment_key("R", "J", "T", "REF", "S"))[0]
    out = [
        f"- **response key** (`Request.key`): `canonical_hash` of the request's fields {', '.join(req)}; "
        f"`params` holds {', '.join(params)}. Left out while unset, so older keys stay valid: `fingerprint` "
        f"when empty, and the params {', '.join(optional)} when `None`.",
        f"- **judgment key** (`schema.judgment_key`): `canonical_hash` of {', '.join(f'`{k}`' for k in jkey)} "
        "(the response key, the judge id, its `template_hash`, the reference's `text_hash`, its `settings_hash`); "
        "`reference` and `settings` are left out when empty.",
        "",
        "| judge | `template_hash` hashes | `settings_hash` hashes |",
        "|---|---|---|",
    ]
    for name in sorted(_registered_judges()):
        spec = f"{name}:{JUDGE_ARGS[name]}" if name in JUDGE_ARGS else name
        try:
            judge = make_judge(spec)
        except Exception as exc:  # a new built-in judge that needs an argument
            raise SystemExit(f"cannot build judge {spec!r} ({exc}); give it an argument in JUDGE_ARGS") from exc
        module = importlib.import_module(type(judge).__module__)
        for v in list(vars(module).values()):  # a module-level cached hash (keyword's) must be computed afresh
            if callable(getattr(v, "cache_clear", None)) and getattr(v, "__module__", None) == module.__name__:
                v.cache_clear()
        t: list[Any] = []
        files = _capture(
            templates,
            lambda t=t, module=module, judge=judge: t.extend(_capture(module, lambda: judge.template_hash)),
        )
        hook = module if "settings_hash" in type(judge).__dict__ else contract
        s = _capture(hook, judge.settings_hash)
        tmpl = _shape(t[-1], judge) if t else 'nothing (`""`)'
        if files:  # templates.template_hash: the template files' text
            names = sorted({n for payload in files if isinstance(payload, dict) for n in payload})
            tmpl += f" (`template`: the text of {', '.join(f'`prompts/templates/{n}`' for n in names)})"
        sources = getattr(module, "SOURCE_MODULES", None)
        if sources:
            names = [f"`{type(judge).__module__}`", *(f"`{m.__name__}`" for m in sources)]
            tmpl += f"; the source of {', '.join(names)}"
        sett = _shape(s[-1], judge) if s else 'nothing (`""`)'
        out.append(f"| `{name}` | {tmpl} | {sett} |")
        judge.close()
    return "\n".join(out) + "\n"


def _registered_judges() -> dict[str, Any]:
    from deccp_eval.base import pluginmanager

    return {n: r for n, r in pluginmanager.judges().items() if r.plugin in pluginmanager.DEFAULT_PLUGINS}


SECTIONS: dict[str, Callable[[], str]] = {
    "commands": section_commands,
    "backends": lambda: _table("backends", "backend"),
    "judges": lambda: _table("judges", "judge"),
    "datasets": lambda: _table("datasets", "dataset"),
    "layers": section_layers,
    "keys": section_keys,
}


def render(text: str) -> str:
    """`text` with every generated section rebuilt; fails when a section's markers are missing."""
    found = {m.group("name") for m in MARKER.finditer(text)}
    missing = sorted(set(SECTIONS) - found)
    if missing:
        raise SystemExit(f"docs/ARCHITECTURE.md lacks the markers of: {', '.join(missing)}")
    unknown = sorted(found - set(SECTIONS))
    if unknown:
        raise SystemExit(f"docs/ARCHITECTURE.md has markers no generator fills: {', '.join(unknown)}")
    return MARKER.sub(lambda m: m.group(1) + SECTIONS[m.group("name")]() + m.group(4), text)


def diff(old: str, new: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(True), new.splitlines(True), "docs/ARCHITECTURE.md", "docs/ARCHITECTURE.md (regenerated)"
        )
    )


def main(argv: list[str]) -> int:
    old = DOC.read_text(encoding="utf-8")
    new = render(old)
    if "--check" in argv:
        if old != new:
            print(diff(old, new) + "\ndocs/ARCHITECTURE.md is stale: run `make docs`", file=sys.stderr)
            return 1
        return 0
    if old != new:
        DOC.write_text(new, encoding="utf-8")
        print("docs/ARCHITECTURE.md regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
