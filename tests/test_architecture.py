"""The house rules that keep the layers apart: the core is a stack of layers (folders inside
deccp_eval/) and a module never imports one above its own; no two modules import each other, however
indirectly (lazy and TYPE_CHECKING imports count); imports run plugin -> core only; prompts/ is data;
and a plugin can add a CLI command through the same hook the built-ins use."""

import ast
from pathlib import Path

import click
from click.testing import CliRunner

from deccp_eval.base import pluginmanager
from deccp_eval.hookspecs import hookimpl  # the public path a third-party plugin uses

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_PACKAGES = {"plugins": "deccp_eval.plugins", "judges": "deccp_eval.judges"}


def _imports(path: Path) -> list[str]:
    """Every module a file imports, at any depth (lazy imports inside functions count too)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{a.name}" for a in node.names)
    return names


def _is_plugin(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in PLUGIN_PACKAGES.values())


def test_core_never_imports_a_plugin():
    bad = [
        f"{f.relative_to(ROOT)} imports {m}"
        for f in sorted((ROOT / "deccp_eval").rglob("*.py"))
        for m in _imports(f)
        if _is_plugin(m)
    ]
    assert bad == []


def test_no_plugin_imports_another_plugin():
    bad = []
    for folder, package in PLUGIN_PACKAGES.items():
        for f in sorted((ROOT / folder).glob("*.py")):
            own = f"{package}.{f.stem}"
            bad += [
                f"{folder}/{f.name} imports {m}"
                for m in _imports(f)
                if _is_plugin(m) and m != own and not m.startswith(own + ".") and m not in PLUGIN_PACKAGES.values()
            ]
    assert bad == []


def test_the_checker_sees_a_lazy_plugin_import(tmp_path):
    # the walk must catch an import hidden in a function body, the form the old code used
    f = tmp_path / "x.py"
    f.write_text("def f():\n    from deccp_eval.plugins.hf import resolve_path\n")
    assert [m for m in _imports(f) if _is_plugin(m)] == ["deccp_eval.plugins.hf", "deccp_eval.plugins.hf.resolve_path"]


class HelloPlugin:
    @staticmethod
    @hookimpl
    def register_commands(cli: click.Group) -> None:
        @cli.command()
        @click.argument("name")
        def hello(name: str) -> None:
            """Say hello (a command added by a plugin at run time)."""
            click.echo(f"hello {name}")


def test_plugin_adds_a_subcommand():
    from deccp_eval.cli import main

    pluginmanager.register_plugin(HelloPlugin(), name="test-hello")
    try:
        runner = CliRunner()
        listing = runner.invoke(main, ["--help"])
        assert listing.exit_code == 0, listing.output
        assert "hello" in listing.output and "Say hello" in listing.output
        assert "run " in listing.output and "leaderboard" in listing.output  # built-ins come through the hook too
        result = runner.invoke(main, ["hello", "world"])
        assert result.exit_code == 0 and result.output == "hello world\n"
    finally:
        pluginmanager.unregister_plugin("test-hello")
        main.commands.pop("hello", None)


def test_builtin_commands_come_from_the_hook():
    from deccp_eval import commands

    impls = {
        pluginmanager.pm.get_name(i.plugin) for i in pluginmanager.load_plugins().hook.register_commands.get_hookimpls()
    }
    assert "deccp_eval.commands" in impls
    group = click.Group("scratch")
    commands.register_commands(cli=group)
    assert {
        "run",
        "judge",
        "leaderboard",
        "prompts",
        "plugins",
        "toy",
        "demo",
        "gold",
        "report",
        "compare",
        "validate-judge",
        "abliterate",
    } <= set(group.commands)


# -- layers and cycles --------------------------------------------------------------------------------

# The core's layers, low to high: a module may import its own layer and the ones below, never one above.
LAYERS = (
    "base",
    "store",
    "datasets",
    "backends",
    "judging",
    "run",
    "importers",
    "review",
    "training",
    "toy",
    "analysis",
    "demo",
    "commands",
    "cli",
)
PLUGIN_LAYER = len(LAYERS)  # plugins/ and judges/ sit above the whole core
# Public import paths third-party plugins use: thin re-exports, outside the layers, never imported by the project.
SHIMS = ("deccp_eval.backend", "deccp_eval.judge", "deccp_eval.hookspecs", "deccp_eval.schema")
SOURCES = {
    "deccp_eval": "deccp_eval",
    "plugins": "deccp_eval.plugins",
    "judges": "deccp_eval.judges",
    "prompts": "deccp_eval.prompts",
}


def project_modules(root: Path) -> dict[str, Path]:
    """Module name -> file, for every Python file of the package and the folders mapped into it."""
    mods: dict[str, Path] = {}
    for folder, package in SOURCES.items():
        for f in sorted((root / folder).rglob("*.py")):
            parts = list(f.relative_to(root / folder).with_suffix("").parts)
            if "__pycache__" in parts:
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join([package, *parts])] = f
    return mods


def import_graph(root: Path) -> dict[str, dict[str, int]]:
    """module -> {imported project module: line}, from every import statement in the file, at any
    depth: module level, function bodies, TYPE_CHECKING blocks. `from P import x` imports P, and
    the module P.x when there is one."""
    mods = project_modules(root)
    graph: dict[str, dict[str, int]] = {}
    for name, f in mods.items():
        package = name if f.name == "__init__.py" else name.rpartition(".")[0]
        out: dict[str, int] = {}
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"), filename=str(f))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets.append(base)  # runs P's __init__ even when x is a submodule
                targets += [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in mods]
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != name:
                    out.setdefault(t, node.lineno)
        graph[name] = out
    return graph


def layer_of(module: str) -> int | None:
    """The layer's rank; None for a shim (outside the order) or a module in no layer."""
    if module in SHIMS:
        return None
    if module.startswith(("deccp_eval.plugins", "deccp_eval.judges")):
        return PLUGIN_LAYER
    if module == "deccp_eval":
        return 0  # the package itself: __version__ only
    first = module.split(".")[1]
    return LAYERS.index(first) if first in LAYERS else None


def upward_imports(graph: dict[str, dict[str, int]]) -> list[str]:
    bad = []
    for a, targets in sorted(graph.items()):
        if a in SHIMS:
            continue
        for b, line in sorted(targets.items()):
            la, lb = layer_of(a), layer_of(b)
            if b in SHIMS:
                bad.append(f"{a}:{line} imports the public shim {b}; import the module it re-exports")
            elif la is not None and lb is not None and lb > la:
                bad.append(
                    f"{a}:{line} ({LAYERS[la] if la < PLUGIN_LAYER else 'plugins'}) imports {b} "
                    f"({LAYERS[lb] if lb < PLUGIN_LAYER else 'plugins'}), a higher layer"
                )
    return bad


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One import cycle per strongly connected group of modules (Tarjan), as a path a -> ... -> a."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:  # the graph is a few hundred modules: recursion is fine
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    found = []
    for group in groups:  # a shortest way back to the start, inside the group
        members, start = set(group), min(group)
        paths = {start: [start]}
        queue = [start]
        while queue:
            v = queue.pop(0)
            for w in sorted(graph.get(v, {})):
                if w == start:
                    found.append(paths[v] + [start])
                    queue = []
                    break
                if w in members and w not in paths:
                    paths[w] = paths[v] + [w]
                    queue.append(w)
    return found


def test_every_core_module_is_in_a_layer():
    lost = [
        m
        for m in project_modules(ROOT)
        if m.startswith("deccp_eval.")
        and layer_of(m) is None
        and m not in SHIMS
        and not m.startswith("deccp_eval.prompts")
    ]
    assert lost == [], f"modules outside every layer (put them in one of {LAYERS}): {lost}"


def test_no_module_imports_a_higher_layer():
    assert upward_imports(import_graph(ROOT)) == []


def test_no_import_cycles():
    found = cycles(import_graph(ROOT))
    assert found == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_checker_sees_a_planted_cycle_and_an_upward_import(tmp_path):
    for folder in SOURCES:
        (tmp_path / folder).mkdir()
    files = {
        "deccp_eval/__init__.py": "",
        "deccp_eval/base/__init__.py": "",
        "deccp_eval/base/a.py": "def f():\n    from deccp_eval.run.r import g\n",  # lazy, and upward
        "deccp_eval/run/__init__.py": "",
        "deccp_eval/run/r.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import s\n",
        "deccp_eval/run/s.py": "from deccp_eval.run import r\nfrom deccp_eval.base import a\n",
        "plugins/p.py": "from deccp_eval.backend import Backend\n",  # a shim: the project never uses them
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    graph = import_graph(tmp_path)
    assert cycles(graph) == [["deccp_eval.base.a", "deccp_eval.run.r", "deccp_eval.run.s", "deccp_eval.base.a"]]
    bad = upward_imports(graph)
    assert len(bad) == 1 and bad[0].startswith("deccp_eval.base.a:2 (base) imports deccp_eval.run.r (run)")
    (tmp_path / "deccp_eval/backend.py").write_text("from deccp_eval.base.a import f\n")
    assert "imports the public shim deccp_eval.backend" in upward_imports(import_graph(tmp_path))[-1]


def test_prompts_is_data_only():
    """prompts/ holds the prompt sets and templates; its one Python file is the package marker, with no
    code, and nothing imports it (datasets.builtin finds the folder without running it)."""
    for f in (ROOT / "prompts").rglob("*.py"):
        assert f.relative_to(ROOT).as_posix() == "prompts/__init__.py", f
        body = ast.parse(f.read_text(encoding="utf-8")).body
        assert len(body) <= 1 and all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)
    users = [m for m, targets in import_graph(ROOT).items() if "deccp_eval.prompts" in targets]
    assert users == [] and "deccp_eval.prompts" not in pluginmanager.DEFAULT_PLUGINS


def test_shims_only_re_export():
    import importlib

    for shim in SHIMS:
        path = ROOT / (shim.replace(".", "/") + ".py")
        body = ast.parse(path.read_text(encoding="utf-8")).body
        sources = {n.module for n in body if isinstance(n, ast.ImportFrom)}
        assert len(sources) == 1 and all(isinstance(n, (ast.Expr, ast.ImportFrom, ast.Assign)) for n in body), shim
        public, real = importlib.import_module(shim), importlib.import_module(sources.pop())
        assert public.__all__ and all(getattr(public, n) is getattr(real, n) for n in public.__all__)


# -- no plugin names in the core or the judges: capabilities are declared on backend classes ------------

# `hf` is the backend a bare local model name means (realign's model spec) and the name of a pip extra:
# not checked. Files that may name a plugin, and what: the toy defines its alias; the demo runs named
# backends on it, as a user would.
NAMED_ON_PURPOSE = {
    "deccp_eval/toy/model.py": {"deccp-toy"},
    "deccp_eval/demo/demo.py": {"abliterated:"},
    "deccp_eval/demo/realign_demo.py": {"abliterated:"},
}


def _plugin_names() -> set[str]:
    return (set(pluginmanager.backends()) - {"hf"}) | set(pluginmanager.model_aliases())


def _string_literals(path: Path) -> list[tuple[int, str]]:
    """Every string constant in code, f-string parts included; docstrings, `help=` texts and the pip
    extra that `MissingDependency(package, extra, feature)` names are prose, not code."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    prose: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                prose.add(id(first.value))
        elif isinstance(node, ast.keyword) and node.arg == "help":
            prose.update(id(n) for n in ast.walk(node.value))
        elif (
            isinstance(node, ast.Call) and getattr(node.func, "id", None) == "MissingDependency" and len(node.args) > 1
        ):
            prose.add(id(node.args[1]))
    return [
        (n.lineno, n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in prose
    ]


def _named_plugins(path: Path, names: set[str], allowed: frozenset[str] = frozenset()) -> list[str]:
    """Literals that are a plugin's name or start a spec with one (`"vllm"`, `"abliterated:"`)."""
    return sorted(
        f"{lineno}: {text!r}"
        for lineno, text in _string_literals(path)
        if text not in allowed and (text in names or ":" in text and text.partition(":")[0] in names)
    )


def test_core_and_judges_never_name_a_plugin():
    names = _plugin_names()
    assert {"openai", "anthropic", "vllm", "abliterated", "deccp-toy"} <= names
    bad = []
    for f in sorted([*(ROOT / "deccp_eval").rglob("*.py"), *(ROOT / "judges").rglob("*.py")]):
        rel = f.relative_to(ROOT).as_posix()
        bad += [f"{rel}:{hit}" for hit in _named_plugins(f, names, frozenset(NAMED_ON_PURPOSE.get(rel, ())))]
    assert bad == []


def test_the_name_checker_sees_code_and_skips_prose(tmp_path):
    f = tmp_path / "x.py"
    f.write_text(
        '"""Judges through openai or vllm."""\n'
        'STRUCTURED = ("openai", "anthropic")\n'
        "def f(spec, backend):\n"
        '    """abliterated:X is the base."""\n'
        '    click.option("--x", help="vllm: tensor parallel")\n'
        '    MissingDependency("torch", "vllm", "The vllm backend")\n'
        '    return (spec.startswith("abliterated:") or backend.name == "vllm"\n'
        '            or f"deccp-toy" or "openai-ish")\n'
    )
    assert _named_plugins(f, _plugin_names()) == [
        "2: 'anthropic'",
        "2: 'openai'",
        "7: 'abliterated:'",
        "7: 'vllm'",
        "8: 'deccp-toy'",
    ]
    assert _named_plugins(f, _plugin_names(), frozenset({"deccp-toy"}))[-2:] == ["7: 'abliterated:'", "7: 'vllm'"]
