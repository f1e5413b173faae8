"""Executors: where a model spec's backend runs. `local` builds it in this process; `ray` puts
local weights in Ray actors across a cluster. Either way the runner gets a `Backend` whose
`on_response` fires in the driver, so the driver alone writes the store."""

from __future__ import annotations

from deccp_eval.base.errors import UsageError
from deccp_eval.run.executors.contract import Executor
from deccp_eval.run.executors.in_process import LocalExecutor
from deccp_eval.run.executors.ray import RayExecutor

EXECUTORS = ("local", "ray")


def make_executor(
    name: str = "local",
    *,
    address: str | None = None,
    replicas: int | None = None,
    gpus_per_replica: float | None = None,
) -> Executor:
    """`local` (in this process) or `ray` (Ray actors; `address` of a running cluster, else a local one)."""
    if name == "local":
        if address or replicas or gpus_per_replica:
            raise UsageError("--ray-address/--replicas/--gpus-per-replica need --executor ray")
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address=address, replicas=replicas, gpus_per_replica=gpus_per_replica)
    raise UsageError(f"unknown executor {name!r}; available: {', '.join(EXECUTORS)}")
