"""The backend contract, model specs, and the batching loop shared by local engines."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Sequence

from pydantic import BaseModel, ConfigDict, Field

from deccp_eval.errors import UsageError
from deccp_eval.schema import Request, Response, canonical_hash

OnResponse = Callable[[Response], None]

# `extra` options that change how requests are sent, never what comes back: left out of fingerprints.
NON_OUTPUT_EXTRA = frozenset({"backoff_base_s", "backoff_max_s", "first_request_grace_s", "judge_max_tokens"})


class BackendOptions(BaseModel):
    """Options from flags or a models file; secrets are named by env var, never held."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(default=16, ge=1)
    max_concurrency: int = Field(default=32, ge=1)
    max_retries: int = Field(default=6, ge=1)
    timeout_s: float = Field(default=120.0, gt=0)
    base_url: str | None = None
    api_key_env: str | None = None
    dtype: str = "auto"
    device: str = "auto"
    prices: dict[str, float] | None = None  # USD per million tokens: {"input": x, "output": y}
    extra: dict[str, Any] = Field(default_factory=dict)


def parse_spec(spec: str) -> tuple[str, str]:
    """`BACKEND:MODEL` -> (backend, model); the model part may itself contain colons."""
    backend, sep, model = spec.partition(":")
    if not sep or not backend or not model:
        raise UsageError(f"model spec {spec!r} is not BACKEND:MODEL (e.g. hf:./my-model, openai:gpt-4o-mini)")
    return backend, model


class Backend(ABC):
    """Turns requests into responses; calls `on_response` as each finishes so nothing is lost."""

    name: ClassVar[str]
    description: ClassVar[str] = ""

    def __init__(self, model: str, options: BackendOptions | None = None) -> None:
        self.model = model
        self.options = options or BackendOptions()

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.model}"

    def check(self) -> None:
        """Fail before any request when the backend cannot work (missing key, package, path)."""

    def fingerprint(self) -> str:
        """What this backend's answers depend on besides the request: part of every request key.

        Contract: two backends with equal fingerprints give the same answer to the same request;
        anything that can change an answer (weights, revision, base_url, dtype, chat template,
        output-changing options) changes the fingerprint; nothing else does (keys, timeouts,
        concurrency, batch size, retries). This default hashes the spec, `base_url`, `dtype` and the
        `extra` options (NON_OUTPUT_EXTRA aside); a backend adds what the spec points at, e.g. a
        local folder's content (`deccp_eval.fingerprint.model_fingerprint`) or a resolved revision,
        and may narrow the options to the ones its typed options model marks output-changing."""
        o = self.options
        extra = {k: v for k, v in o.extra.items() if k not in NON_OUTPUT_EXTRA}
        return canonical_hash({"spec": self.spec, "base_url": o.base_url, "dtype": o.dtype, "extra": extra})[:32]

    @abstractmethod
    def generate(self, requests: Sequence[Request], on_response: OnResponse) -> None: ...

    def close(self) -> None:
        """Free engines, clients and memory."""


class BatchBackend(Backend):
    """A local engine that generates a list at a time."""

    @abstractmethod
    def generate_batch(self, requests: Sequence[Request]) -> list[Response]: ...

    def generate(self, requests: Sequence[Request], on_response: OnResponse) -> None:
        size = self.options.batch_size
        for start in range(0, len(requests), size):
            chunk = requests[start : start + size]
            t0 = time.perf_counter()
            try:
                responses = self.generate_batch(chunk)
            except (MemoryError, RuntimeError) as exc:  # e.g. CUDA OOM: keep the error, go on
                msg = f"{type(exc).__name__}: {exc}"[:500]
                responses = [Response(key=r.key, error=msg) for r in chunk]
            per_item = (time.perf_counter() - t0) / max(len(chunk), 1)
            for resp in responses:
                if resp.latency_s is None:
                    resp.latency_s = per_item
                on_response(resp)


def group_by_params(requests: Sequence[Request]) -> list[list[int]]:
    """Indices of the requests, grouped by identical sampling params (one engine call per group)."""
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(requests):
        groups.setdefault(r.params.model_dump_json(), []).append(i)
    return list(groups.values())


def make_backend(spec: str, options: BackendOptions | None = None) -> Backend:
    from deccp_eval import pluginmanager

    name, model = parse_spec(spec)
    registered = pluginmanager.backends()
    if name not in registered:
        known = ", ".join(sorted(registered))
        raise UsageError(f"unknown backend {name!r} in {spec!r}; available: {known} (see `deccp-eval plugins`)")
    return registered[name].obj(model, options)
