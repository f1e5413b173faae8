"""The house rules that keep the layers apart: imports run plugin -> core only, and a plugin can add
a CLI command through the same hook the built-ins use."""

import ast
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from deccp_eval import pluginmanager
from deccp_eval.hookspecs import hookimpl

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
    bad = [f"{f.relative_to(ROOT)} imports {m}" for f in sorted((ROOT / "deccp_eval").rglob("*.py"))
           for m in _imports(f) if _is_plugin(m)]
    assert bad == []


def test_no_plugin_imports_another_plugin():
    bad = []
    for folder, package in PLUGIN_PACKAGES.items():
        for f in sorted((ROOT / folder).glob("*.py")):
            own = f"{package}.{f.stem}"
            bad += [f"{folder}/{f.name} imports {m}" for m in _imports(f)
                    if _is_plugin(m) and m != own and not m.startswith(own + ".")
                    and m not in PLUGIN_PACKAGES.values()]
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

    impls = {pluginmanager.pm.get_name(i.plugin) for i in pluginmanager.load_plugins().hook.register_commands.get_hookimpls()}
    assert "deccp_eval.commands" in impls
    group = click.Group("scratch")
    commands.register_commands(cli=group)
    assert {"run", "judge", "leaderboard", "prompts", "plugins", "toy", "demo", "gold", "report", "compare",
            "validate-judge", "abliterate"} <= set(group.commands)
