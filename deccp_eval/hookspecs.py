"""The hooks a plugin may implement (pluggy, in the style of simonw/llm)."""

from __future__ import annotations

from typing import Callable

import pluggy

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
