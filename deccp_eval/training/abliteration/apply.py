"""Project a direction out of everything that writes the residual stream: in the weights, or with hooks.

Writers are found by role (`writers.find_writers`): every attention / linear-attention output
projection, dense MLP output, and every routed and shared expert's down projection, fused 3-D
expert tensors included (edited one expert at a time, so no copy of all experts is made), and
optionally the input embeddings. For a writer W whose output lands in the residual stream,
W <- W - w(l) d d^T W, and its bias b <- b - w(l) d d^T b, so d^T (W x + b) is scaled by
1 - w(l) for every input. The hook mode applies exactly the same map to the writer's output
(out <- out - w d d^T out; for fused experts, to the experts module's summed output), so a trial
needs no weight copy. Behind a post-norm (Gemma 2/3, GLM-4) d is replaced by normalize(g * d),
which makes the normalised write orthogonal to d (exactly at w = 1).

The lm_head reads the stream and is never touched; when it is tied to the embeddings and the
embeddings are orthogonalized, it first gets its own copy of the original matrix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from deccp_eval.base.errors import UsageError
from deccp_eval.training.abliteration.direction import decoder_layers
from deccp_eval.training.abliteration.writers import Writer, writers_of


class Kernel(BaseModel):
    """Per-layer weight: `max_weight` at `peak`, falling linearly to `min_weight` at `width` layers away, 0 beyond.

    The heretic parameterisation: refusal is written over a band of middle layers, and
    ablating less outside that band keeps the model's other behaviour (lower KL).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    peak: float = Field(ge=0)
    max_weight: float = Field(ge=0)
    min_weight: float = Field(ge=0)
    width: float = Field(gt=0)

    def weight(self, layer: int) -> float:
        distance = abs(layer - self.peak)
        if distance > self.width:
            return 0.0
        return self.max_weight + (distance / self.width) * (self.min_weight - self.max_weight)

    def weights(self, n_layers: int) -> list[float]:
        return [self.weight(i) for i in range(n_layers)]

    @classmethod
    def uniform(cls, n_layers: int, weight: float = 1.0) -> Kernel:
        """Every layer at the same weight (the original abliteration recipe)."""
        return cls(peak=0, max_weight=weight, min_weight=weight, width=max(n_layers, 1))


class AbliterationParams(BaseModel):
    """Everything needed to reproduce an edit from a direction file."""

    model_config = ConfigDict(extra="forbid")

    direction_index: float = Field(ge=0, description="0 = embeddings, i + 1 = output of decoder layer i")
    kernel: Kernel
    embeddings: bool = False
    norm_preserve: bool = False
    project_harmless: bool = False

    @property
    def embedding_weight(self) -> float:
        return self.kernel.max_weight if self.embeddings else 0.0


def writers(model: Any) -> list[Writer]:
    """Every residual writer of the model, by role (cached on the model); see `writers.find_writers`."""
    return writers_of(model)


def _unit(direction: Any, device: Any, dtype: Any) -> Any:
    import torch

    d = direction.to(device=device, dtype=torch.float32)
    return (d / d.norm()).to(dtype)


def _edit_out_rows(weight: Any, d: Any, w: float, norm_preserve: bool) -> Any:
    """W [hidden, in] (columns are written vectors) -> W - w d d^T W, columns rescaled to their old norms."""
    import torch

    mat = weight.to(torch.float32)
    old = mat.norm(dim=0) if norm_preserve else None
    mat = mat - w * torch.outer(d, d @ mat)
    if old is not None:
        mat = mat * (old / mat.norm(dim=0).clamp_min(1e-12))
    return mat.to(weight.dtype)


def _edit_vectors(vectors: Any, d: Any, w: float, norm_preserve: bool) -> Any:
    """[n, hidden] rows that are each written (embedding rows, a bias as one row): same edit, row-wise."""
    import torch

    mat = vectors.to(torch.float32)
    old = mat.norm(dim=-1, keepdim=True) if norm_preserve else None
    mat = mat - w * (mat @ d).unsqueeze(-1) * d
    if old is not None:
        mat = mat * (old / mat.norm(dim=-1, keepdim=True).clamp_min(1e-12))
    return mat.to(vectors.dtype)


def embeddings_tied(model: Any) -> bool:
    out = model.get_output_embeddings()
    inp = model.get_input_embeddings()
    return out is not None and out.weight.data_ptr() == inp.weight.data_ptr()


def untie_embeddings_(model: Any) -> bool:
    """Give a tied lm_head its own copy of the (still original) matrix; True when it was tied."""
    import torch

    if not embeddings_tied(model):
        return False
    out = model.get_output_embeddings()
    out.weight = torch.nn.Parameter(out.weight.detach().clone(), requires_grad=out.weight.requires_grad)
    model.config.tie_word_embeddings = False
    text_config = getattr(model.config, "get_text_config", lambda: None)()
    if text_config is not None and hasattr(text_config, "tie_word_embeddings"):
        text_config.tie_word_embeddings = False
    if hasattr(model, "get_expanded_tied_weights_keys"):  # transformers 5 records tying at load time
        model.all_tied_weights_keys = model.get_expanded_tied_weights_keys(all_submodels=True)
    return True


def _edit_matrix(mat: Any, d: Any, w: float, transposed: bool, norm_preserve: bool) -> Any:
    """One writer matrix: [hidden, in] (columns written) or, transposed, [in, hidden] (rows written)."""
    if transposed:
        return _edit_vectors(mat, d, w, norm_preserve)
    return _edit_out_rows(mat, d, w, norm_preserve)


def offloaded_writers(model: Any) -> list[str]:
    """Writers whose weights accelerate keeps on disk (device_map offload): only hooks can ablate those."""
    return [w.name for w in writers(model) if w.param.device.type == "meta"]


def _require_materialised(writer: Writer) -> None:
    if writer.param.device.type == "meta":
        raise UsageError(
            f"{writer.name} is offloaded to disk (device_map): its weights cannot be edited in place; "
            "give more --max-memory, or use the abliterated backend with mode=hooks"
        )


def edit_writer_(writer: Writer, direction: Any, w: float, norm_preserve: bool = False) -> None:
    """Orthogonalize one writer in place; fused experts one expert at a time (never a copy of all of them)."""
    import torch

    _require_materialised(writer)
    param, bias = writer.param, writer.bias_param
    d = writer.direction(_unit(direction, param.device, torch.float32))
    with torch.no_grad():
        if writer.fused:
            for e in range(param.shape[0]):
                param[e].copy_(_edit_matrix(param[e], d, w, writer.transposed, norm_preserve))
        else:  # a Linear [hidden, in], or a Conv1D [in, hidden] (transposed)
            param.copy_(_edit_matrix(param, d, w, writer.transposed, norm_preserve))
        if bias is not None:  # [hidden] or, for fused experts, [experts, hidden]: each row is written
            rows = bias if bias.dim() == 2 else bias.unsqueeze(0)
            rows.copy_(_edit_vectors(rows, d.to(bias.device), w, norm_preserve))


def orthogonalize_(model: Any, direction: Any, params: AbliterationParams) -> dict[str, Any]:
    """Edit the writers' weights (and biases) in place; returns what was changed, for the record."""
    import torch

    weights = params.kernel.weights(len(decoder_layers(model)))
    edited: list[str] = []
    untied = False
    with torch.no_grad():
        for writer in writers(model):
            w = weights[writer.layer]
            if w == 0:
                continue
            edit_writer_(writer, direction, w, params.norm_preserve)
            edited.append(writer.name)
        if params.embeddings and params.embedding_weight > 0:
            untied = untie_embeddings_(model)
            emb = model.get_input_embeddings()
            d = _unit(direction, emb.weight.device, torch.float32)
            emb.weight.copy_(_edit_vectors(emb.weight, d, params.embedding_weight, params.norm_preserve))
            edited.append("embed_tokens")
    return {"edited": edited, "layer_weights": weights, "untied_lm_head": untied}


@contextlib.contextmanager
def ablation_hooks(model: Any, direction: Any, params: AbliterationParams) -> Iterator[None]:
    """Project the direction out of every writer's output while inside: the weight edit without copying weights.

    Exactly the same linear map as `orthogonalize_` (biases included); norm preservation has no
    hook equivalent, so use `weights_applied` for that.
    """
    import torch

    if params.norm_preserve:
        raise ValueError("norm-preserving edits change the weights themselves: use weights_applied()")
    weights = params.kernel.weights(len(decoder_layers(model)))
    cache: dict[tuple[Any, ...], Any] = {}

    def make_hook(w: float, writer: Writer | None) -> Any:
        def hook(_mod: Any, _inp: Any, out: Any) -> Any:
            key = (id(writer), out.device, out.dtype)
            if key not in cache:
                d = _unit(direction, out.device, torch.float32)
                cache[key] = (writer.direction(d) if writer is not None else d).to(out.dtype)
            d = cache[key]
            return out - w * (out @ d).unsqueeze(-1) * d

        return hook

    # A fused experts tensor is not a module: hook its experts module, whose output sums every expert's.
    handles = [
        w.module.register_forward_hook(make_hook(weights[w.layer], w)) for w in writers(model) if weights[w.layer] != 0
    ]
    if params.embeddings and params.embedding_weight > 0:
        handles.append(model.get_input_embeddings().register_forward_hook(make_hook(params.embedding_weight, None)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def weights_applied(model: Any, direction: Any, params: AbliterationParams) -> Iterator[None]:
    """Orthogonalize in place while inside, then restore the original tensors (kept on the CPU meanwhile)."""
    import torch

    snapshot: list[tuple[Any, Any]] = []
    for writer in writers(model):
        for p in (writer.param, writer.bias_param):
            if p is not None:
                snapshot.append((p, p.detach().cpu().clone()))
    emb = model.get_input_embeddings()
    out = model.get_output_embeddings()
    tied_before = embeddings_tied(model)
    tie_flag = getattr(model.config, "tie_word_embeddings", False)
    if params.embeddings:
        snapshot.append((emb.weight, emb.weight.detach().cpu().clone()))
    try:
        orthogonalize_(model, direction, params)
        yield
    finally:
        with torch.no_grad():
            for param, saved in snapshot:
                param.copy_(saved.to(param.device))
        if tied_before and not embeddings_tied(model):
            out.weight = emb.weight
            model.config.tie_word_embeddings = tie_flag
            if hasattr(model, "get_expanded_tied_weights_keys"):
                model.all_tied_weights_keys = model.get_expanded_tied_weights_keys(all_submodels=True)


def applied(model: Any, direction: Any, params: AbliterationParams) -> contextlib.AbstractContextManager[None]:
    """The cheapest exact way to try a candidate: hooks, or a reversible weight edit when norms are preserved."""
    if params.norm_preserve:
        return weights_applied(model, direction, params)
    return ablation_hooks(model, direction, params)


def residual_components(model: Any, direction: Any) -> dict[str, float]:
    """max |d_w^T column| of every writer (per expert for fused ones; d_w is d behind any post-norm), its bias,
    and max |row . d| of the embeddings: ~0 after a w=1 edit."""
    import torch

    out: dict[str, float] = {}
    with torch.no_grad():
        for writer in writers(model):
            param, bias = writer.param, writer.bias_param
            d = writer.direction(_unit(direction, param.device, torch.float32))
            mats = [param[e] for e in range(param.shape[0])] if writer.fused else [param]
            out[writer.name] = max(
                float(((m.to(torch.float32) @ d) if writer.transposed else (d @ m.to(torch.float32))).abs().max())
                for m in mats
            )
            if bias is not None:
                out[writer.name + ".bias"] = float((bias.to(torch.float32) @ d.to(bias.device)).abs().max())
        emb = model.get_input_embeddings()
        d = _unit(direction, emb.weight.device, torch.float32)
        out["embed_tokens"] = float((emb.weight.to(torch.float32) @ d).abs().max())
    return out
