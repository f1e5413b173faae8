"""The one plugin manager: built-ins from DEFAULT_PLUGINS, third-party ones by entry point."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pluggy

from deccp_eval.base import hookspecs

DEFAULT_PLUGINS: tuple[str, ...] = (
    "deccp_eval.plugins.hf",
    "deccp_eval.plugins.openai",
    "deccp_eval.plugins.anthropic",
    "deccp_eval.plugins.vllm",
    "deccp_eval.plugins.abliterated",
    "deccp_eval.judges.keyword",
    "deccp_eval.judges.llm",
    "deccp_eval.judges.panel",
    "deccp_eval.judges.cascade",
    "deccp_eval.judges.clf",
    "deccp_eval.datasets.builtin",
    "deccp_eval.toy.prompt_sets",
    "deccp_eval.toy.model",
    "deccp_eval.commands",
)

ENTRY_POINT_GROUP = "deccp_eval"


@dataclass(frozen=True)
class Registered:
    name: str
    obj: Any
    plugin: str


pm = pluggy.PluginManager("deccp_eval")
pm.add_hookspecs(hookspecs)
_loaded = False


def load_plugins() -> pluggy.PluginManager:
    global _loaded
    if _loaded:
        return pm
    _loaded = True
    for modname in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(modname), name=modname)
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return pm


def _collect(hook_name: str) -> dict[str, Registered]:
    load_plugins()
    found: dict[str, Registered] = {}
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        plugin_name = pm.get_name(impl.plugin) or repr(impl.plugin)

        def register(*args: Any, _plugin: str = plugin_name) -> None:
            if len(args) == 1:
                name, obj = args[0].name, args[0]
            else:
                name, obj = args
            if name in found:
                raise ValueError(f"{hook_name}: {name!r} registered by both {found[name].plugin} and {_plugin}")
            found[name] = Registered(name, obj, _plugin)

        impl.function(register=register)
    return found


def reset() -> None:
    """Forget cached registrations (tests that register plugins at run time)."""
    backends.cache_clear()
    judges.cache_clear()
    datasets.cache_clear()
    model_aliases.cache_clear()


@lru_cache(maxsize=1)
def backends() -> dict[str, Registered]:
    return _collect("register_backends")


@lru_cache(maxsize=1)
def judges() -> dict[str, Registered]:
    return _collect("register_judges")


@lru_cache(maxsize=1)
def datasets() -> dict[str, Registered]:
    return _collect("register_datasets")


@lru_cache(maxsize=1)
def model_aliases() -> dict[str, Registered]:
    return _collect("register_model_aliases")


def register_plugin(plugin: object, name: str | None = None) -> None:
    """Register an in-process plugin object (tests, notebooks)."""
    load_plugins()
    pm.register(plugin, name=name)
    reset()


def unregister_plugin(name: str) -> None:
    pm.unregister(name=name)
    reset()
