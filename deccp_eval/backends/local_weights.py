"""Local transformers generation, shared by the local backends and the abliteration engine: model
aliases (names that stand for weights made on demand, such as the toy), one left-padded batched
`generate`, and the backend base class that loads a model once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from deccp_eval.backends.contract import Backend, BatchBackend, group_by_params
from deccp_eval.backends.contract import Options as OptionsBase
from deccp_eval.backends.fingerprint import model_fingerprint
from deccp_eval.backends.torch_utils import load_model
from deccp_eval.base.errors import MissingDependency
from deccp_eval.base.reasoning import split_reasoning
from deccp_eval.base.schema import Request, Response, canonical_hash


class LocalHFBackend(BatchBackend):
    """Base of the local transformers backends: load once, left-padded batches."""

    local_weights = True

    class Options(OptionsBase):
        """`hf` takes no backend options: dtype and device are flags of their own."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._model: Any = None
        self._tokenizer: Any = None

    def check(self) -> None:
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except ImportError:
            raise MissingDependency("transformers", "hf", "The hf backend") from None

    def fingerprint(self) -> str:
        """The weights, tokenizer and chat template's content (or the hub revision), dtype, options."""
        return local_fingerprint(self, self.model)

    def load(self) -> tuple[Any, Any]:
        if self._model is None:
            self._model, self._tokenizer = load_model(resolve_path(self.model), options=self.options.load)
            self._model = self.prepare(self._model)
        return self._model, self._tokenizer

    def prepare(self, model: Any) -> Any:
        """Hook for subclasses that change the model before generation (abliteration)."""
        return model

    def generate_batch(self, requests: Sequence[Request]) -> list[Response]:
        return generate_with(self.load()[0], self._tokenizer, requests)

    def close(self) -> None:
        self._model = self._tokenizer = None


@dataclass(frozen=True)
class ModelAlias:
    """A model name that stands for local weights made on demand (the offline toy), registered through
    the `register_model_aliases` hook: every local backend loads `path()` for it, and `version()` is
    part of its fingerprint. A file or folder of the same name wins over the alias."""

    name: str
    path: Callable[[], Any]  # the weights' folder, built on first use
    version: Callable[[], str]  # part of every fingerprint of these weights
    description: str = ""
    abliterated: Callable[[], Any] | None = None  # a ready copy with the refusal direction removed
    heldout: str | None = None  # a dataset it never trained on: abliterate's default selection/test prompts


def model_alias(model: str) -> ModelAlias | None:
    """The registered alias `model` names, unless a file or folder has that name."""
    from pathlib import Path

    from deccp_eval.base import pluginmanager

    found = pluginmanager.model_aliases().get(model)
    return found.obj if found is not None and not Path(model).exists() else None


def resolve_path(model: str) -> str:
    """A model alias's folder (built on first use); any other name as given."""
    alias = model_alias(model)
    return str(alias.path()) if alias is not None else model


def weights_fingerprint(model: str, revision: str | None = None) -> str:
    """What a local model name points at: a folder's or file's content (weights, tokenizer, config,
    chat template; `deccp_eval.backends.fingerprint`), else the hub id's resolved revision. A model alias's
    version is part of its."""

    found = model_fingerprint(resolve_path(model), revision)
    alias = model_alias(model)
    return f"{alias.version()}|{found}" if alias is not None else found


def local_fingerprint(backend: Backend, model: str, options: dict[str, Any] | None = None, **parts: Any) -> str:
    """Fingerprint of a local-weights backend: spec, dtype, output-changing options (default: the
    typed options' own), the weights' content, and any further `parts` (a direction, a template)."""
    load = backend.options.load
    return canonical_hash(
        {
            "spec": backend.spec,
            "dtype": load.dtype,
            "options": backend.opts.output_options() if options is None else options,
            "weights": weights_fingerprint(model, load.revision),
            **parts,
            **({"trust_remote_code": True} if load.trust_remote_code else {}),
            **({"gguf_file": load.gguf_file} if load.gguf_file else {}),
        }
    )[:32]


def generate_with(model: Any, tokenizer: Any, requests: Sequence[Request]) -> list[Response]:
    """One left-padded `generate` over a list of requests that share sampling params."""
    import torch

    out: list[Response | None] = [None] * len(requests)
    for idxs in group_by_params(requests):
        chunk = [requests[i] for i in idxs]
        p = chunk[0].params
        template_kwargs = {} if p.thinking is None else {"enable_thinking": p.thinking}  # Qwen3, GLM-4.5+ templates
        texts = [
            tokenizer.apply_chat_template(r.messages(), tokenize=False, add_generation_prompt=True, **template_kwargs)
            for r in chunk
        ]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        kwargs: dict[str, Any] = {"max_new_tokens": p.max_tokens, "pad_token_id": tokenizer.pad_token_id}
        if p.temperature > 0:
            kwargs.update(do_sample=True, temperature=p.temperature, top_p=p.top_p)
            torch.manual_seed((p.seed or 0) * 1000 + chunk[0].sample)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            gen = model.generate(**enc, **kwargs)
        new = gen[:, enc["input_ids"].shape[1] :]
        eos_ids = _eos_ids(model, tokenizer)
        for row, (i, r) in enumerate(zip(idxs, chunk)):
            toks = new[row].tolist()
            n_out = next((k + 1 for k, t in enumerate(toks) if t in eos_ids), None)
            finish = "stop" if n_out is not None else "length"
            used = toks[: n_out if n_out is not None else len(toks)]
            decoded = decode_reply(tokenizer, used, cut=n_out is None)
            split = split_reasoning(decoded)
            out[i] = Response(
                key=r.key,
                text=split.answer,
                reasoning=split.reasoning,
                finish_reason=finish,
                tokens_in=int(enc["attention_mask"][row].sum()),
                tokens_out=len(used),
            )
    return [o for o in out if o is not None]


def decode_reply(tokenizer: Any, tokens: list[int], cut: bool) -> str:
    """The reply's text. A reply cut by max_tokens can stop inside a multi-byte character (a
    Chinese one is 3 bytes, often 2-3 byte tokens), which decodes to a trailing U+FFFD: the
    incomplete sequence is dropped (at most the last 3 tokens), so a cut is never broken text."""
    full = tokenizer.decode(tokens, skip_special_tokens=True)
    if not cut or not full.endswith("\ufffd"):
        return full
    for drop in range(1, min(3, len(tokens)) + 1):
        text = tokenizer.decode(tokens[:-drop], skip_special_tokens=True)
        if not text.endswith("\ufffd"):
            return text
    return full  # still broken 3 tokens back: broken bytes, not a cut


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = model.generation_config.eos_token_id
    found = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        found.add(tokenizer.eos_token_id)
    return found
