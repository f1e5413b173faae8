"""The Ray executor: each local model (a backend that declares `local_weights`: `hf:`, `vllm:`,
`abliterated:`) runs in Ray actors that load it once and serve shards of requests; answers come back
to the driver as shards finish.

Why actors and not Ray Data's LLM processor: the harness needs every answer handed to the driver as
it arrives (the store is written there, row by row, so a killed driver resumes), the same three
plugins on CPU and GPU, and a shard lost with its actor sent again; `ray.data.llm` is vLLM-only and
writes a dataset at the end. Remote API backends stay in the driver: a cluster adds nothing to them.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from deccp_eval.backends.contract import Backend, BackendOptions, OnResponse, make_backend
from deccp_eval.base.errors import DeccpError, MissingDependency, UsageError
from deccp_eval.base.progress import console
from deccp_eval.base.schema import Request, Response
from deccp_eval.run.executors.contract import Executor

log = logging.getLogger("deccp_eval")

SHARDS_IN_FLIGHT = 2  # per replica: one generating, one queued, so a replica never waits on the driver


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependency("ray", "ray", "The ray executor") from None
    return ray


class Replica:
    """The body of a Ray actor: builds the plugin's backend and loads its weights once, then
    serves shards. It never touches the store; it returns answers to the driver."""

    def __init__(self, spec: str, options: dict[str, Any], cwd: str) -> None:
        t0 = time.perf_counter()
        if os.path.isdir(cwd):  # relative model paths mean what they mean to the driver
            os.chdir(cwd)
        self.backend = make_backend(spec, BackendOptions.model_validate(options))
        self.backend.check()
        load = getattr(self.backend, "load", None)  # local backends load lazily; do it once, here
        if callable(load):
            load()
        self.load_s = time.perf_counter() - t0

    def ready(self) -> dict[str, Any]:
        import ray

        return {"load_s": self.load_s, "node": ray.util.get_node_ip_address(), "pid": os.getpid()}

    def generate(self, requests: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], float, dict[str, Any]]:
        """(answers, seconds spent, where it ran) for one shard."""
        t0 = time.perf_counter()
        out: list[Response] = []
        self.backend.generate([Request.model_validate(r) for r in requests], out.append)
        return [r.model_dump(mode="json") for r in out], time.perf_counter() - t0, self.ready()


@dataclass
class ReplicaStats:
    index: int
    node: str = "?"
    pid: int = 0
    load_s: float = 0.0
    busy_s: float = 0.0
    shards: int = 0
    answers: int = 0
    lost: bool = False
    loading: bool = False  # a spare that had not loaded the model yet

    def line(self) -> str:
        state = " (lost)" if self.lost else " (still loading, unused)" if self.loading else ""
        return (
            f"replica {self.index}{state} on {self.node} pid {self.pid}: load {self.load_s:.1f}s, "
            f"{self.shards} shards, {self.answers} answers, busy {self.busy_s:.1f}s"
        )


def local_node(address: str | None) -> dict[str, str]:
    """A cluster this process starts itself lives on 127.0.0.1 only (nothing listens for other hosts'
    workers by accident); joining a running cluster keeps that cluster's own addresses."""
    return {"_node_ip_address": "127.0.0.1"} if address in (None, "local") else {}


class ClusterBackend(Backend):
    """A local model served by `replicas` Ray actors. `generate` shards the requests, streams the
    answers to `on_response` in the driver, and sends a dead actor's unfinished shards again."""

    name = "ray"
    local_weights = True  # it serves only backends that declare local weights

    def __init__(self, inner: Backend, options: BackendOptions, replicas: int, cpus: float, gpus: float) -> None:
        self.inner = inner  # first: `spec` (used while the base class checks options) reads it
        super().__init__(inner.model, options)
        self.replicas, self.cpus, self.gpus = replicas, cpus, gpus
        self.spare = replicas  # replacements allowed for actors that die
        self.live: dict[int, Any] = {}
        self.loading: dict[Any, int] = {}  # a spare's `ready` ref -> its index, until it has loaded
        self.stats: dict[int, ReplicaStats] = {}
        self.requeued = 0

    @property
    def spec(self) -> str:
        return self.inner.spec

    def fingerprint(self) -> str:
        """The served model's own: an answer from a replica is the same answer as from this process."""
        return self.inner.fingerprint()

    @property
    def progress_label(self) -> str:
        return f"{self.spec} [{self.replicas} replica{'s' * (self.replicas != 1)}]"

    def _engine_options(self) -> dict[str, Any]:
        opts = self.options.model_copy(deep=True)
        spread = self.inner.gpu_parallel_option
        if spread and self.gpus > 1:  # one replica spans its GPUs
            opts.extra.setdefault(spread, int(self.gpus))
        return opts.model_dump(mode="json")

    def _spawn(self) -> int:
        ray = require_ray()
        index = len(self.stats)
        actor_cls = ray.remote(Replica).options(
            num_cpus=self.cpus, num_gpus=self.gpus, max_restarts=0, max_task_retries=0
        )
        self.live[index] = actor_cls.remote(self.spec, self._engine_options(), os.getcwd())
        self.stats[index] = ReplicaStats(index)
        return index

    def start(self) -> None:
        """Start the replicas and wait until each has loaded the model (a load error stops here)."""
        if self.live:
            return
        ray = require_ray()
        for _ in range(self.replicas):
            self._spawn()
        refs = {self.live[i].ready.remote(): i for i in list(self.live)}
        try:
            for ref, i in refs.items():
                info = ray.get(ref)
                st = self.stats[i]
                st.node, st.pid, st.load_s = info["node"], info["pid"], info["load_s"]
        except ray.exceptions.RayError as exc:
            for actor in self.live.values():
                ray.kill(actor)
            self.live.clear()
            raise DeccpError(f"{self.spec}: a replica could not load the model: {_cause(exc)}") from None
        log.info(
            "%s: %d replicas ready (%s)",
            self.spec,
            self.replicas,
            ", ".join(f"{s.node} {s.load_s:.1f}s" for s in self.stats.values()),
        )

    def _lose(self, index: int, exc: BaseException) -> None:
        """An actor died: forget it and, while spares last, start another in its place. The spare gets
        shards once it has loaded the model (`_loaded`); until then the live replicas take them all."""
        if index not in self.live:
            return
        del self.live[index]
        self.stats[index].lost = True
        log.warning("%s: replica %d died (%s); its unfinished shards go to another", self.spec, index, _cause(exc))
        if self.spare > 0:
            self.spare -= 1
            spare = self._spawn()
            self.loading[self.live[spare].ready.remote()] = spare
            self.stats[spare].loading = True

    def _loaded(self, ref: Any) -> None:
        """A spare's `ready` answered: it takes shards from now on, or it died while loading."""
        ray = require_ray()
        index = self.loading.pop(ref)
        try:
            info = ray.get(ref)
        except ray.exceptions.RayError as exc:
            self._lose(index, exc)
            return
        st = self.stats[index]
        st.node, st.pid, st.load_s, st.loading = info["node"], info["pid"], info["load_s"], False

    def generate(self, requests: Sequence[Request], on_response: OnResponse) -> None:
        ray = require_ray()
        self.start()
        size = self.options.batch_size
        queue: deque[list[Request]] = deque(list(requests[i : i + size]) for i in range(0, len(requests), size))
        in_flight: dict[Any, tuple[int, list[Request]]] = {}
        seen: set[str] = set()
        while queue or in_flight:
            loading = set(self.loading.values())
            for _ in range(SHARDS_IN_FLIGHT):  # round by round, so a few shards still spread over every replica
                for index, actor in list(self.live.items()):
                    if (
                        not queue
                        or index in loading
                        or sum(1 for i, _ in in_flight.values() if i == index) >= SHARDS_IN_FLIGHT
                    ):
                        continue
                    shard = queue.popleft()
                    in_flight[actor.generate.remote([r.model_dump(mode="json") for r in shard])] = (index, shard)
            if not in_flight and not self.loading:
                raise DeccpError(
                    f"{self.spec}: every replica died and no spare is left; "
                    f"{sum(len(s) for s in queue)} requests not sent (a rerun resumes)"
                )
            [ref], _ = ray.wait([*in_flight, *self.loading], num_returns=1)
            if ref in self.loading:
                self._loaded(ref)
                continue
            index, shard = in_flight.pop(ref)
            try:
                answers, busy_s, info = ray.get(ref)
            except ray.exceptions.RayActorError as exc:  # the actor is gone: the shard goes back in the queue
                self._lose(index, exc)
                queue.appendleft(shard)
                self.requeued += len(shard)
                continue
            except ray.exceptions.RayTaskError as exc:  # the backend raised: keep the error, go on
                msg = f"replica {index}: {_cause(exc)}"[:500]
                answers, busy_s, info = [Response(key=r.key, error=msg).model_dump(mode="json") for r in shard], 0.0, {}
            st = self.stats[index]
            st.node, st.pid = info.get("node", st.node), info.get("pid", st.pid)
            st.load_s = info.get("load_s", st.load_s)
            st.shards, st.busy_s, st.answers = st.shards + 1, st.busy_s + busy_s, st.answers + len(answers)
            for data in answers:
                resp = Response.model_validate(data)
                if resp.key not in seen:
                    seen.add(resp.key)
                    on_response(resp)

    def summary(self) -> list[str]:
        lines = [s.line() for s in self.stats.values()]
        if self.requeued:
            lines.append(f"{self.requeued} requests re-sent after a replica died")
        return lines

    def close(self) -> None:
        """Free the replicas (their GPUs go to the next model) and say how each spent its time."""
        if not self.live:
            return
        ray = require_ray()
        for actor in self.live.values():
            ray.kill(actor)
        self.live.clear()
        self.loading.clear()  # a spare still loading when the work ran out: killed above, never used

        console.print(f"[bold]{self.spec}[/bold] on Ray:")
        for line in self.summary():
            console.print(f"  {line}")
            log.info("%s: %s", self.spec, line)


class RayExecutor(Executor):
    """Connects to a Ray cluster (`address`, or starts a local one) and places local models on it."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        replicas: int | None = None,
        gpus_per_replica: float | None = None,
        cpus_per_replica: float = 1.0,
    ) -> None:
        ray = require_ray()
        self.owned = not ray.is_initialized()
        if self.owned:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, **local_node(address))
            except ConnectionError as exc:
                raise UsageError(f"cannot reach a Ray cluster at {address!r}: {exc}") from None
        res = ray.cluster_resources()
        total_gpus, total_cpus = float(res.get("GPU", 0)), float(res.get("CPU", 0))
        gpus = (1.0 if total_gpus else 0.0) if gpus_per_replica is None else float(gpus_per_replica)
        if replicas is None:  # one per GPU group, or one per node on a CPU cluster
            replicas = int(total_gpus // gpus) if gpus else len([n for n in ray.nodes() if n.get("Alive")])
        if replicas < 1 or replicas * gpus > total_gpus or replicas * cpus_per_replica > total_cpus:
            self.close()
            raise UsageError(
                f"{replicas} replicas x ({cpus_per_replica:g} CPU, {gpus:g} GPU) do not fit the Ray "
                f"cluster ({total_cpus:g} CPUs, {total_gpus:g} GPUs); lower --replicas or "
                "--gpus-per-replica"
            )
        self.replicas, self.gpus, self.cpus = replicas, gpus, cpus_per_replica

    def backend(self, spec: str, options: BackendOptions | None = None) -> Backend:
        options = options or BackendOptions()
        inner = make_backend(spec, options)
        if not inner.local_weights:  # an API: the driver's async engine is the right place
            return inner
        return ClusterBackend(inner, options, self.replicas, self.cpus, self.gpus)

    def close(self) -> None:
        if self.owned:
            require_ray().shutdown()
            self.owned = False


def _cause(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:300]
