"""The backend contract, model specs, and the batching loop shared by local engines."""

from __future__ import annotations

import difflib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from deccp_eval.backends.torch_utils import LoadOptions, WithLoadOptions  # noqa: F401 - LoadOptions: for plugin authors
from deccp_eval.base import pluginmanager
from deccp_eval.base.errors import UsageError
from deccp_eval.base.schema import Request, Response, canonical_hash

OnResponse = Callable[[Response], None]
# How something that needs a model builds its backend: `make_backend` here, or an executor's
# `backend` (e.g. Ray actors). Judges get one so an LLM judge on local weights can run on a cluster.
BackendFactory = Callable[[str, "BackendOptions | None"], "Backend"]


class JudgeOptions(BaseModel):
    """How judges that ask a model judge (`--judge-samples`, `--judge-examples`, `--escalate-below`, or
    `--backend-option judge_max_tokens=...`: each field's alias is its `--backend-option` key). They ride
    in `BackendOptions.judge`, never in `extra`, so they are in no backend's fingerprint; a judge puts
    the ones it reads in its own template or settings hash."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    max_tokens: int = Field(1024, ge=1, alias="judge_max_tokens", description="tokens per judge reply")
    samples: int = Field(1, ge=1, alias="judge_samples", description="samples per item (majority verdict)")
    temperature: float = Field(0.7, ge=0, alias="judge_temperature", description="with samples > 1")
    examples: str | None = Field(None, alias="judge_examples", description="few-shot examples: labelled JSONL")
    structured: bool = Field(True, alias="judge_structured", description="JSON replies where the backend can")
    logprobs: int = Field(5, ge=0, alias="judge_logprobs", description="top log-probs asked for (0: none)")
    escalate_below: float | None = Field(
        None, ge=0, le=1, alias="escalate_below", description="cascade: a verdict stands at this confidence or above"
    )


# Judge settings as `--backend-option` keys (JudgeOptions' aliases): taken out of `extra` into `judge`.
_JUDGE_FIELDS = {f.alias or name: name for name, f in JudgeOptions.model_fields.items()}
JUDGE_OPTION_KEYS = frozenset(_JUDGE_FIELDS)


class BackendOptions(WithLoadOptions):
    """Options from flags or a models file; secrets are named by env var, never held. How local weights
    load is `load` (LoadOptions; its fields may be given flat), how judges judge is `judge`
    (JudgeOptions; its `--backend-option` keys in `extra` move there)."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(default=16, ge=1)
    max_concurrency: int = Field(default=32, ge=1)
    max_retries: int = Field(default=6, ge=1)
    timeout_s: float = Field(default=120.0, gt=0)
    base_url: str | None = None
    api_key_env: str | None = None
    prices: dict[str, float] | None = None  # USD per million tokens: {"input": x, "output": y}
    batch: bool = False  # API backends: send through the provider's batch API (`--batch`)
    state_db: str | None = None  # the store file that keeps batch ids (the commands set it to --db)
    dry_run: bool = False  # API backends: print requests, batches and estimated cost; send nothing
    judge: JudgeOptions = Field(default_factory=lambda: JudgeOptions.model_validate({}))
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _judge_keys_out_of_extra(cls, data: Any) -> Any:
        extra = data.get("extra") if isinstance(data, dict) else None
        if not isinstance(extra, dict) or not JUDGE_OPTION_KEYS & extra.keys():
            return data
        judge = data.get("judge") or {}
        judge = judge.model_dump() if isinstance(judge, JudgeOptions) else dict(judge)
        judge.update({_JUDGE_FIELDS[k]: v for k, v in extra.items() if k in JUDGE_OPTION_KEYS})
        return {**data, "judge": judge, "extra": {k: v for k, v in extra.items() if k not in JUDGE_OPTION_KEYS}}


log = logging.getLogger("deccp_eval")


class Options(BaseModel):
    """A backend's typed `--backend-option KEY=VALUE`s and models-file `options` (the llm project's
    per-model Options idiom): a typo or a wrong type is a clear error naming the valid options.
    Every field changes the output (so it is part of the fingerprint) unless made with `knob()`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def output_options(self) -> dict[str, Any]:
        """The set options that change what comes back (knobs aside): part of the fingerprint."""
        knobs = declared_knobs(type(self))
        return {k: v for k, v in self.model_dump(mode="json", exclude_defaults=True).items() if k not in knobs}


class OpenOptions(Options):
    """For a third-party backend without its own Options: any key, each one output-changing unless a
    registered backend declares it with `knob()` (one `--backend-option` reaches every model of a run,
    e.g. the remote engine's retry waits)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    def output_options(self) -> dict[str, Any]:
        from deccp_eval.base import pluginmanager

        knobs = {
            k for r in pluginmanager.backends().values() for k in declared_knobs(getattr(r.obj, "Options", Options))
        }
        return {k: v for k, v in super().output_options().items() if k not in knobs}


def knob(default: Any, description: str, **constraints: Any) -> Any:
    """An option that changes how requests are sent, never what comes back: kept out of fingerprints."""
    return Field(default=default, description=description, json_schema_extra={"knob": True}, **constraints)


def declared_knobs(options: type[Options]) -> frozenset[str]:
    """The fields of an Options model made with `knob()`."""
    return frozenset(
        k
        for k, f in options.model_fields.items()
        if isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get("knob")
    )


def option_names(options: type[Options]) -> list[str]:
    return sorted(options.model_fields)


def parse_options(backend: type[Backend], spec: str, extra: dict[str, Any], strict: bool = False) -> Options:
    """`extra` -> the backend's typed Options. Judge settings are dropped; a key that is another
    registered backend's option is ignored with a warning (one `--backend-option` reaches every
    model of a run) unless `strict` (a models-file entry names its own backend)."""
    cls = backend.Options
    own = {k: v for k, v in extra.items() if k not in JUDGE_OPTION_KEYS}
    if cls.model_config.get("extra") != "allow" and not strict:
        others = {
            k for r in pluginmanager.backends().values() for k in getattr(r.obj, "Options", OpenOptions).model_fields
        }
        for key in sorted(k for k in own if k not in cls.model_fields and k in others):
            log.warning("%s ignores option %s (an option of another backend)", spec, key)
            own.pop(key)
    try:
        return cls.model_validate(own)
    except ValidationError as exc:
        raise UsageError(options_error(spec, backend.name, cls, exc)) from None


def options_error(spec: str, name: str, cls: type[Options], exc: ValidationError) -> str:
    valid = option_names(cls)
    problems = []
    for e in exc.errors():
        key = ".".join(map(str, e["loc"]))
        if e["type"] == "extra_forbidden":
            close = difflib.get_close_matches(key, valid, n=1)
            problems.append(f"unknown option {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        else:
            problems.append(f"option {key!r}: {e['msg']}")
    return (
        f"{spec}: {'; '.join(problems)}. Valid options for the {name} backend: {', '.join(valid) or 'none'} "
        "(set with --backend-option KEY=VALUE or a models file's `options`)"
    )


def parse_spec(spec: str) -> tuple[str, str]:
    """`BACKEND:MODEL` -> (backend, model); the model part may itself contain colons."""
    backend, sep, model = spec.partition(":")
    if not sep or not backend or not model:
        raise UsageError(f"model spec {spec!r} is not BACKEND:MODEL (e.g. hf:./my-model, openai:gpt-4o-mini)")
    return backend, model


class Backend(ABC):
    """Turns requests into responses; calls `on_response` as each finishes so nothing is lost.

    What a backend can do is declared here, on the class, and read by the core and the judges
    (never a plugin's name): the capability flags below, `Options` (with `knob()` for options that
    change no answer) and `derived_from`."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Options: ClassVar[type[Options]] = OpenOptions  # built-in backends declare their own, strict
    # True: `generate` accepts a lazy iterable and reads it as it goes (remote engines), so the
    # runner leases keys as slots free up instead of in chunks that drain between them.
    streams: ClassVar[bool] = False
    # Capabilities (all off by default):
    structured_output: ClassVar[bool] = False  # honours SamplingParams.json_schema: the reply is one JSON object
    logprobs: ClassVar[bool] = False  # returns Response.logprobs when SamplingParams.top_logprobs asks
    batch_api: ClassVar[bool] = False  # `--batch`: sends through a provider's batch API
    local_weights: ClassVar[bool] = False  # runs weights on this machine: Ray actors can hold it; nothing to price
    priced_dry_run: ClassVar[bool] = False  # `generate` honours options.dry_run itself: prints, prices, sends nothing
    gpu_parallel_option: ClassVar[str | None] = None  # the option that spreads one replica over N GPUs (Ray)

    def __init__(self, model: str, options: BackendOptions | None = None) -> None:
        self.model = model
        self.options = options or BackendOptions()
        self.opts = parse_options(type(self), self.spec, self.options.extra)  # typed; a typo fails here

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.model}"

    @property
    def progress_label(self) -> str:
        """What the progress bar names (an executor adds where it runs, e.g. its replica count)."""
        return self.spec

    def check(self) -> None:
        """Fail before any request when the backend cannot work (missing key, package, path)."""

    def fingerprint(self) -> str:
        """What this backend's answers depend on besides the request: part of every request key.

        Contract: two backends with equal fingerprints give the same answer to the same request;
        anything that can change an answer (weights, revision, base_url, dtype, chat template,
        output-changing options) changes the fingerprint; nothing else does (keys, timeouts,
        concurrency, batch size, retries, judge settings). This default hashes the spec, `base_url`,
        `dtype` and the typed options' output-changing ones (`Options.output_options`: fields made
        with `knob()` aside); a backend adds what the spec points at, e.g. a local folder's content
        (`deccp_eval.backends.fingerprint.model_fingerprint`) or a resolved revision."""
        o = self.options
        return canonical_hash(
            {"spec": self.spec, "base_url": o.base_url, "dtype": o.load.dtype, "extra": self.opts.output_options()}
        )[:32]

    @classmethod
    def derived_from(cls, model: str) -> str | None:
        """The spec of the model this one was made from (e.g. the base of a weight edit), so a report
        pairs the two; None for a model in its own right."""
        return None

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


CAPABILITIES = ("structured_output", "logprobs", "batch_api", "local_weights")


def capabilities(backend: type[Backend]) -> list[str]:
    """The capability flags a backend class declares (what `deccp-eval plugins` lists)."""
    return [c for c in CAPABILITIES if getattr(backend, c, False)]


def group_by_params(requests: Sequence[Request]) -> list[list[int]]:
    """Indices of the requests, grouped by identical sampling params (one engine call per group)."""
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(requests):
        groups.setdefault(r.params.model_dump_json(), []).append(i)
    return list(groups.values())


def backend_class(spec: str) -> type[Backend]:
    """The registered Backend class a spec names."""
    name, _ = parse_spec(spec)
    registered = pluginmanager.backends()
    if name not in registered:
        known = ", ".join(sorted(registered))
        raise UsageError(f"unknown backend {name!r} in {spec!r}; available: {known} (see `deccp-eval plugins`)")
    return registered[name].obj


def make_backend(spec: str, options: BackendOptions | None = None) -> Backend:
    return backend_class(spec)(parse_spec(spec)[1], options)
