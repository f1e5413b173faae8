"""Third-party output off the terminal: what `deccp-eval demo` does unless `-v`.

transformers' "Loading weights" bars, `datasets`' "Saving the dataset" and map bars, optuna's and the
libraries' log records and Python warnings (torch, transformers and TRL warn through `warnings`) go to
a log handler (the run's log file) instead of the terminal, through each library's own switches:
`transformers.utils.logging.disable_progress_bar` / `disable_default_handler`,
`datasets.disable_progress_bars`, `huggingface_hub.utils.disable_progress_bars`,
`optuna.logging.disable_default_handler`, `logging.captureWarnings`. A library not imported yet gets
its switches when it is first imported (an import hook), so a cached demo that never loads a model
never pays for importing transformers. Trainer loss dicts are the trainer's callbacks' job:
`realign` swaps TRL's printer for a log callback while `enabled()`.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

# Library loggers whose records go to the log file (their children follow): HF libraries, optuna,
# torch, matplotlib (its font warnings) and `py.warnings` (logging.captureWarnings).
LIBRARY_LOGGERS = (
    "py.warnings",
    "transformers",
    "datasets",
    "huggingface_hub",
    "trl",
    "peft",
    "accelerate",
    "optuna",
    "torch",
    "matplotlib",
)

_handler: logging.Handler | None = None


def enabled() -> bool:
    """True once `quiet_libraries` ran in this process."""
    return _handler is not None


def log_handler() -> logging.Handler | None:
    return _handler


def quiet_libraries(handler: logging.Handler) -> None:
    """Progress bars of the HF libraries off; library log records and warnings to `handler` only."""
    global _handler
    if _handler is not None:
        return
    _handler = handler
    logging.captureWarnings(True)
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.propagate = False
    actions: dict[str, Callable[[ModuleType], None]] = {
        "huggingface_hub": _huggingface_hub,
        "transformers": _transformers,
        "datasets": _datasets,
        "optuna": _optuna,
    }
    later: dict[str, Callable[[ModuleType], None]] = {}
    for name, action in actions.items():
        if name in sys.modules:
            action(sys.modules[name])
        else:
            later[name] = action
    if later:
        sys.meta_path.insert(0, _AfterImport(later))


def _huggingface_hub(_: ModuleType) -> None:
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()


def _transformers(_: ModuleType) -> None:
    from transformers.utils import logging as tlog

    tlog.disable_progress_bar()  # "Loading weights", "Writing model shards"
    tlog.disable_default_handler()  # its stderr handler; ours is on the "transformers" logger


def _datasets(module: ModuleType) -> None:
    module.disable_progress_bars()  # "Saving the dataset", "Map", TRL's "Tokenizing train dataset"
    _drop_stream_handlers(logging.getLogger("datasets"))  # `datasets` has no disable_default_handler


def _optuna(_: ModuleType) -> None:
    import optuna

    optuna.logging.disable_default_handler()


def _drop_stream_handlers(logger: logging.Logger) -> None:
    for h in list(logger.handlers):
        if type(h) is logging.StreamHandler:
            logger.removeHandler(h)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs `actions[name](module)` right after the top-level package `name` is first imported."""

    def __init__(self, actions: dict[str, Callable[[ModuleType], None]]) -> None:
        self.actions = actions

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        action = self.actions.pop(fullname, None)  # popped first, so the lookup below skips this finder
        if action is None:
            return None
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _ThenLoader(spec.loader, action)
        return spec


class _ThenLoader(importlib.abc.Loader):
    """The package's own loader, then the action; everything else (resources, is_package) delegated."""

    def __init__(self, loader: Any, action: Callable[[ModuleType], None]) -> None:
        self.loader, self.action = loader, action

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        try:
            self.action(module)
        except Exception as exc:  # never let quieting break an import
            logging.getLogger("deccp_eval").debug("quieting %s failed: %s", module.__name__, exc)

    def __getattr__(self, name: str) -> Any:  # only for what this class does not define
        if name == "loader":  # not set yet (a copy made without __init__): no recursion
            raise AttributeError(name)
        return getattr(self.loader, name)
