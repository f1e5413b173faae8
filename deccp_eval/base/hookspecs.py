"""The hooks a plugin may implement (pluggy, in the style of simonw/llm)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

hookspec = pluggy.HookspecMarker("deccp_eval")
hookimpl = pluggy.HookimplMarker("deccp_eval")


@hookspec
def register_backends(register: Callable[..., None]) -> None:
    """Call register(BackendClass) for each model backend; the class's `name` is the spec prefix."""


@hookspec
def register_judges(register: Callable[..., None]) -> None:
    """Call register(JudgeClass) for each judge; the class's `name` is the spec prefix."""


@hookspec
def register_datasets(register: Callable[..., None]) -> None:
    """Call register(name, loader) where loader() returns a list of Prompt."""


@hookspec
def register_model_aliases(register: Callable[..., None]) -> None:
    """Call register(deccp_eval.backends.local_weights.ModelAlias(...)) for each model name that stands for
    local weights made on demand (the toy: `hf:deccp-toy`); its `name` is the model part of a spec."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add subcommands: cli.add_command(command) or @cli.command(). Keep the module light: import
    heavy libraries inside the command body, so `deccp-eval --help` stays instant."""
