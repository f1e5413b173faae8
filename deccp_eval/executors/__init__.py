"""Executors: where a model spec's backend runs. `local` builds it in this process; `ray` puts
local weights in Ray actors across a cluster. Either way the runner gets a `Backend` whose
`on_response` fires in the driver, so the driver alone writes the store."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from deccp_eval.backend import Backend, BackendOptions
from deccp_eval.errors import UsageError

EXECUTORS = ("local", "ray")


class Executor(ABC):
    """Turns a model spec into a Backend placed somewhere; `close` frees what it started."""

    name: str = ""

    @abstractmethod
    def backend(self, spec: str, options: BackendOptions | None = None) -> Backend: ...

    def close(self) -> None:
        """Stop what this executor started (a cluster connection, actors)."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def make_executor(name: str = "local", *, address: str | None = None, replicas: int | None = None,
                  gpus_per_replica: float | None = None) -> Executor:
    """`local` (in this process) or `ray` (Ray actors; `address` of a running cluster, else a local one)."""
    if name == "local":
        if address or replicas or gpus_per_replica:
            raise UsageError("--ray-address/--replicas/--gpus-per-replica need --executor ray")
        from deccp_eval.executors.local import LocalExecutor

        return LocalExecutor()
    if name == "ray":
        from deccp_eval.executors.ray import RayExecutor

        return RayExecutor(address=address, replicas=replicas, gpus_per_replica=gpus_per_replica)
    raise UsageError(f"unknown executor {name!r}; available: {', '.join(EXECUTORS)}")
