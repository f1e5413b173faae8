"""The built-in CLI commands, one module per command or group; registered through the same
`register_commands` hook a plugin uses (this package is listed in pluginmanager.DEFAULT_PLUGINS).

Command modules import only click and commands.common at the top; everything heavy loads inside
the command bodies, so listing commands for `--help` stays instant."""

from __future__ import annotations

import importlib

import click

from deccp_eval.base.hookspecs import hookimpl

# "module:attribute" of each built-in command, relative to this package.
BUILTIN: tuple[str, ...] = (
    "run:run",
    "judge:judge",
    "leaderboard:leaderboard_cmd",
    "prompts:prompts",
    "plugins:plugins",
    "toy:toy",
    "demo:demo",
    "gold:gold",
    "report:report",
    "report:compare",
    "validate:validate_judge",
    "abliterate:abliterate",
    "train:train_judge",
    "review:review",
    "labels:labels",
    "batches:batches",
    "publish:publish",
    "prefs:prefs",
    "realign:realign",
    "importing:import_cmd",
)


@hookimpl
def register_commands(cli: click.Group) -> None:
    for target in BUILTIN:
        module, _, attr = target.partition(":")
        cli.add_command(getattr(importlib.import_module(f"{__name__}.{module}"), attr))
