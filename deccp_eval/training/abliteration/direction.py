"""Refusal directions from one batched pass: float64 running means of the residual stream.

For every prompt the residual stream is read at the last prompt token (after the chat
template's assistant header, left padding, so position -1), after the embeddings (index 0)
and after every decoder layer (index i + 1). Only running sums are kept, so memory is
O(layers x hidden) whatever the number of prompts; the lm_head is never run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deccp_eval.backends.torch_utils import input_device
from deccp_eval.base.errors import UsageError

DIRECTION_FILE = "direction.safetensors"
FORMAT_VERSION = 1

Message = dict[str, str]


def chat_text(tokenizer: Any, prompt: str, system_prompt: str | None = None) -> str:
    """The prompt as the model sees it right before answering (generation prompt included)."""
    msgs: list[Message] = [{"role": "system", "content": system_prompt}] if system_prompt else []
    msgs.append({"role": "user", "content": prompt})
    return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


def base_model(model: Any) -> Any:
    """The decoder stack without the lm_head (`model.model` for Llama-style models)."""
    return getattr(model, "base_model", model)


def text_config(model: Any) -> Any:
    """The config of the language model (the text part of a multimodal config)."""
    return model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config


def decoder_layers(model: Any) -> Any:
    """The decoder blocks in order: the base model's `layers` (Llama-style families), else the shallowest
    module list holding exactly the config's number of layers (`h` in GPT-2, BLOOM and Falcon,
    `decoder.layers` in OPT, `blocks` in MPT)."""
    import torch

    base = base_model(model)
    layers = getattr(base, "layers", None)
    if layers is not None:
        return layers
    n = getattr(text_config(model), "num_hidden_layers", None)
    lists = [
        (path.count("."), path, mod)
        for path, mod in base.named_modules()
        if isinstance(mod, torch.nn.ModuleList) and n and len(mod) == n
    ]
    if not lists:
        raise UsageError(
            f"{type(model).__name__}: no list of {n} decoder layers found in its base model; abliteration "
            "supports decoder-only models whose blocks sit in one module list (`layers`, `h`, `blocks`, "
            "`decoder.layers`: Qwen, DeepSeek, GLM, Llama, Gemma, GPT-2, OPT, BLOOM, Falcon, MPT, ...)"
        )
    return min(lists, key=lambda t: (t[0], t[1]))[2]


def _batches(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class RunningMeans:
    """Float64 sums per layer and a count: the mean of any number of prompts in fixed memory."""

    def __init__(self, positions: int, hidden: int) -> None:
        import torch

        self.sums = torch.zeros(positions, hidden, dtype=torch.float64)
        self.count = 0

    def add(self, index: int, acts: Any) -> None:
        """Add a batch's [batch, hidden] activations at one position; the batch itself is not kept."""
        import torch

        self.sums[index] += acts.detach().to(torch.float64).sum(dim=0).cpu()

    def mean(self) -> Any:
        if self.count == 0:
            raise ValueError("no prompts were seen")
        return self.sums / self.count


def stream_mean(t: Any, hidden: int, lead: int) -> Any:
    """`t` ([lead axes..., hidden]) as one residual stream. Models with hyper-connections (DeepSeek V4)
    carry several streams between layers, [..., n, hidden] or flattened to
    [..., n * hidden]: the mean of the streams is what a direction and a probe read (DeepSeek V4 mixes its
    streams doubly stochastically, which moves a component among them but keeps their mean)."""
    if t.shape[-1] != hidden:
        if t.shape[-1] % hidden:
            raise UsageError(
                f"a decoder layer outputs {t.shape[-1]} features per token, not a multiple of the hidden size {hidden}"
            )
        t = t.unflatten(-1, (-1, hidden))
    return t.mean(dim=-2) if t.dim() == lead + 2 else t


def residual_means(
    model: Any,
    tokenizer: Any,
    prompts: Iterable[str],
    batch_size: int = 32,
    system_prompt: str | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[Any, int]:
    """([layers + 1, hidden] float64 mean residual at the last prompt token, number of prompts).

    Forward hooks on the embeddings and on every decoder layer add the last position's
    activations to float64 sums as each batch flows through, then the batch is dropped.
    """
    import torch

    layers = decoder_layers(model)
    embed = model.get_input_embeddings()
    hidden = int(text_config(model).hidden_size)
    acc = RunningMeans(len(layers) + 1, hidden)
    batch: list[tuple[int, ...]] = [()]  # the [batch, sequence] shape of the forward pass under way

    def hook_for(index: int) -> Callable[..., None]:
        def hook(_mod: Any, _inp: Any, out: Any) -> None:
            hs = out[0] if isinstance(out, (tuple, list)) else out  # GPT-1's blocks return a list
            # [batch, sequence, ...], the sequence perhaps longer than the input (CPM-Ant prepends prompt
            # tokens); not so when the streams come first (Gemma 3n's AltUp) or in another layout
            if hs.dim() < 2 or hs.shape[0] != batch[0][0] or hs.shape[1] < batch[0][1]:
                where = "the embeddings" if index == 0 else f"decoder layer {index - 1}"
                raise UsageError(
                    f"{type(model).__name__}: {where} output {tuple(hs.shape)} for input {batch[0]}, not "
                    "[batch, sequence, (streams,) hidden]: a residual layout abliteration does not know"
                )
            acc.add(index, stream_mean(hs[:, -1], hidden, lead=1))

        return hook

    handles = [embed.register_forward_hook(hook_for(0))]
    handles += [layer.register_forward_hook(hook_for(i + 1)) for i, layer in enumerate(layers)]
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # position -1 is then every row's last prompt token
    try:
        items = list(prompts) if not isinstance(prompts, Sequence) else prompts
        decoder = base_model(model)

        device = input_device(model)
        for chunk in _batches(items, batch_size):
            texts = [chat_text(tokenizer, p, system_prompt) for p in chunk]
            enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            batch[0] = tuple(enc["input_ids"].shape)
            with torch.inference_mode():
                decoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], use_cache=False)
            acc.count += len(chunk)
            if on_batch:
                on_batch(len(chunk))
    finally:
        tokenizer.padding_side = side
        for h in handles:
            h.remove()
    return acc.mean(), acc.count


@dataclass
class DirectionSet:
    """Mean residuals of both prompt groups at every layer; directions are derived on demand."""

    harmful_mean: Any  # [layers + 1, hidden] float64
    harmless_mean: Any
    n_harmful: int
    n_harmless: int
    model: str = ""

    @property
    def n_positions(self) -> int:
        return int(self.harmful_mean.shape[0])

    def raw(self, project_harmless: bool = False) -> Any:
        """[layers + 1, hidden] unnormalised mean differences (optionally orthogonal to the harmless mean)."""
        import torch

        diff = self.harmful_mean - self.harmless_mean
        if project_harmless:
            unit = torch.nn.functional.normalize(self.harmless_mean, dim=-1)
            diff = diff - (diff * unit).sum(-1, keepdim=True) * unit
        return diff

    def directions(self, project_harmless: bool = False) -> Any:
        """[layers + 1, hidden] float64 unit refusal directions (a zero row stays zero)."""
        import torch

        return torch.nn.functional.normalize(self.raw(project_harmless), dim=-1)

    def direction(self, index: float, project_harmless: bool = False) -> Any:
        """Unit direction at a fractional position: linear between the two nearest layers, renormalised.

        Index 0 is the embedding output and i + 1 the output of decoder layer i, as in
        `output_hidden_states`; fractional indices let the search move smoothly between layers.
        """
        import math

        import torch

        if not 0 <= index <= self.n_positions - 1:
            raise ValueError(f"direction index {index} outside [0, {self.n_positions - 1}]")
        dirs = self.directions(project_harmless)
        lo = int(math.floor(index))
        hi = min(lo + 1, self.n_positions - 1)
        frac = index - lo
        vec = dirs[lo] * (1 - frac) + dirs[hi] * frac
        norm = vec.norm()
        if float(norm) == 0.0:
            raise ValueError(f"the refusal direction at index {index} is zero (both groups have the same mean)")
        return (vec / norm).to(torch.float32)

    def separation(self, project_harmless: bool = False) -> list[float]:
        """Norm of the mean difference per position: where the groups differ most."""
        return [float(x) for x in self.raw(project_harmless).norm(dim=-1)]


def compute_directions(
    model: Any,
    tokenizer: Any,
    harmful: Sequence[str],
    harmless: Sequence[str],
    batch_size: int = 32,
    model_name: str = "",
    on_batch: Callable[[int], None] | None = None,
) -> DirectionSet:
    """Both groups' per-layer means in streaming passes (one batched pass over each prompt list)."""
    if not harmful or not harmless:
        raise ValueError("need at least one harmful and one harmless prompt")
    h_mean, n_h = residual_means(model, tokenizer, harmful, batch_size, on_batch=on_batch)
    s_mean, n_s = residual_means(model, tokenizer, harmless, batch_size, on_batch=on_batch)
    return DirectionSet(h_mean, s_mean, n_h, n_s, model_name)


def save_direction(
    path: str | Path, dirs: DirectionSet, chosen: Any | None = None, params: dict[str, Any] | None = None
) -> Path:
    """safetensors (no pickle): both means, the chosen unit direction, and the parameters as metadata."""
    import torch
    from safetensors.torch import save_file

    tensors = {"harmful_mean": dirs.harmful_mean.contiguous(), "harmless_mean": dirs.harmless_mean.contiguous()}
    if chosen is not None:
        tensors["direction"] = chosen.detach().to(torch.float32).cpu().contiguous()
    meta = {
        "format": str(FORMAT_VERSION),
        "n_harmful": str(dirs.n_harmful),
        "n_harmless": str(dirs.n_harmless),
        "model": dirs.model,
        "params": json.dumps(params or {}),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return path


def load_direction(path: str | Path) -> tuple[DirectionSet, Any | None, dict[str, Any]]:
    """(means, the chosen unit direction or None, the stored parameters)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
        keys = set(fh.keys())
        harmful, harmless = fh.get_tensor("harmful_mean"), fh.get_tensor("harmless_mean")
        chosen = fh.get_tensor("direction") if "direction" in keys else None
    dirs = DirectionSet(
        harmful, harmless, int(meta.get("n_harmful", 0)), int(meta.get("n_harmless", 0)), meta.get("model", "")
    )
    return dirs, chosen, json.loads(meta.get("params") or "{}")
