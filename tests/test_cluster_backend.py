"""The Ray executor's scheduling against a fake `ray` (no cluster, no model; test_ray_executor.py runs
the real thing): a replica's death re-sends its shards, and the spare started in its place gets shards
only once it has loaded the model, so the live replicas never wait on its load."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from deccp_eval.backends.contract import BackendOptions, make_backend
from deccp_eval.base.schema import Request, Response, SamplingParams
from deccp_eval.run.executors import ray as ray_executor


class ActorDied(Exception):
    pass


class Ref:
    """An object ref that is ready at `due` on the fake clock (or raises `error` when read)."""

    def __init__(self, due: int, value: Any = None, error: Exception | None = None) -> None:
        self.due, self.value, self.error = due, value, error


class FakeRay:
    """Just enough of `ray` for ClusterBackend: a clock that ray.wait advances to the earliest ref."""

    exceptions = SimpleNamespace(RayError=Exception, RayActorError=ActorDied, RayTaskError=RuntimeError)

    def __init__(self, load_ticks: Callable[[int], int], dies_on_shard: dict[int, int]) -> None:
        self.clock = 0
        self.actors: list[FakeActor] = []
        self.load_ticks, self.dies_on_shard = load_ticks, dies_on_shard

    def remote(self, cls: Any) -> Any:
        fake = self

        class Options:
            def options(self, **kw: Any) -> Options:
                return self

            def remote(self, spec: str, options: dict[str, Any], cwd: str) -> FakeActor:
                actor = FakeActor(fake, len(fake.actors))
                fake.actors.append(actor)
                return actor

        return Options()

    def wait(self, refs: list[Ref], num_returns: int = 1) -> tuple[list[Ref], list[Ref]]:
        first = min(refs, key=lambda r: r.due)  # ties: the earliest sent
        self.clock = max(self.clock, first.due)
        return [first], [r for r in refs if r is not first]

    def get(self, ref: Ref) -> Any:
        if ref.error is not None:
            raise ref.error
        return ref.value

    def kill(self, actor: FakeActor) -> None:
        actor.killed = True


class FakeActor:
    def __init__(self, ray: FakeRay, index: int) -> None:
        self.index, self.killed = index, False
        self.loaded_at = ray.clock + ray.load_ticks(index)
        self.sent_at: list[int] = []  # the clock when each shard was sent
        info = {"node": "127.0.0.1", "pid": 100 + index, "load_s": 1.0}
        self.ready = SimpleNamespace(remote=lambda: Ref(self.loaded_at, info))

        def generate(requests: list[dict[str, Any]]) -> Ref:
            self.sent_at.append(ray.clock)
            due = max(ray.clock, self.loaded_at) + len(self.sent_at)  # one tick a shard, after the load
            if len(self.sent_at) >= ray.dies_on_shard.get(index, len(self.sent_at) + 1):  # dead from this shard on
                return Ref(due, error=ActorDied(f"actor {index} was killed"))
            answers = [
                Response(key=Request.model_validate(r).key, text=f"answer {r['prompt_id']}").model_dump(mode="json")
                for r in requests
            ]
            return Ref(due, (answers, 0.1, info))

        self.generate = SimpleNamespace(remote=generate)


def run(monkeypatch: pytest.MonkeyPatch, fake: FakeRay, n: int) -> tuple[ray_executor.ClusterBackend, list[str]]:
    monkeypatch.setattr(ray_executor, "require_ray", lambda: fake)
    options = BackendOptions(batch_size=2)
    backend = ray_executor.ClusterBackend(make_backend("hf:tiny", options), options, replicas=2, cpus=1, gpus=0)
    params = SamplingParams(max_tokens=4)
    requests = [Request(model="hf:tiny", prompt_id=f"p{i}", text=f"question {i}", params=params) for i in range(n)]
    got: list[str] = []
    backend.generate(requests, lambda r: got.append(r.key))
    backend.close()
    assert sorted(got) == sorted(r.key for r in requests)  # every answer once: none lost, none twice
    return backend, got


def test_a_spare_takes_shards_only_once_loaded(monkeypatch):
    fake = FakeRay(load_ticks=lambda i: 0 if i < 2 else 5, dies_on_shard={0: 2})
    backend, _ = run(monkeypatch, fake, n=40)  # 20 shards: work enough to outlast the spare's load
    dead, live, spare = fake.actors
    assert backend.stats[0].lost and backend.requeued > 0 and len(backend.stats) == 3
    assert spare.sent_at and min(spare.sent_at) >= spare.loaded_at  # nothing waited on its load
    assert backend.stats[2].shards > 0 and not backend.stats[2].loading and backend.stats[2].pid == 102
    assert all(a.killed for a in (live, spare))


def test_a_spare_still_loading_when_the_work_runs_out_is_never_used(monkeypatch):
    fake = FakeRay(load_ticks=lambda i: 0 if i < 2 else 1000, dies_on_shard={0: 1})
    backend, _ = run(monkeypatch, fake, n=12)
    spare = fake.actors[2]
    assert not spare.sent_at and spare.killed  # the survivor did the dead replica's shards
    assert backend.stats[0].lost and backend.stats[1].answers == 12 and backend.stats[2].loading
    assert "still loading" in backend.summary()[2]


def test_a_spare_that_dies_loading_is_replaced_while_spares_last(monkeypatch):
    fake = FakeRay(load_ticks=lambda i: 0 if i < 2 else 3, dies_on_shard={0: 1})
    original = FakeActor.__init__

    def init(self: FakeActor, ray: FakeRay, index: int) -> None:
        original(self, ray, index)
        if index == 2:  # the first spare fails to load
            self.ready = SimpleNamespace(remote=lambda: Ref(self.loaded_at, error=ActorDied("load failed")))

    monkeypatch.setattr(FakeActor, "__init__", init)
    backend, _ = run(monkeypatch, fake, n=40)
    assert backend.stats[2].lost and not fake.actors[2].sent_at
    assert len(backend.stats) == 4 and backend.stats[3].shards > 0  # the second spare loaded and served
