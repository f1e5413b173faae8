"""What an executor is: the one method the runner calls to get a placed backend, and `close`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from deccp_eval.backends.contract import Backend, BackendOptions


class Executor(ABC):
    """Turns a model spec into a Backend placed somewhere; `close` frees what it started."""

    name: str = ""

    @abstractmethod
    def backend(self, spec: str, options: BackendOptions | None = None) -> Backend: ...

    def close(self) -> None:
        """Stop what this executor started (a cluster connection, actors)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
