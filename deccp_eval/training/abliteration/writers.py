"""The modules that write into the residual stream, found by their role in each decoder layer.

A decoder layer adds to the stream what its token mixer (attention, linear attention) and its
feed-forward part (dense MLP, routed experts, shared experts) output. Each of those ends in an
output projection whose rows live in the hidden space; transformers names them differently per
family (`o_proj`, `o_b_proj`, `out_proj`, `dense`, `c_proj`, `wo`, `w2`, `down_proj`, `fc2`, `fc_out`,
`linear_out`), and MoE families in transformers 5 store all experts of a layer as one fused 3-D tensor
(`experts.down_proj` [experts, hidden, inner], or [experts, inner, hidden] when the experts
module says `is_transposed`). A writer is either an `nn.Linear` with such a name whose output
size is the hidden size (or GPT-2's `Conv1D`, a linear layer stored [in, out]), or such a 3-D
expert tensor whose hidden axis is known.

Some families (Gemma 2/3, GLM-4) normalise a block's output again before adding it (a
"post-norm": x + g * rms(y)^-1 * y). Then d^T(write) = (g*d)^T y / rms(y), so the direction to
remove from y is normalize(g * d), not d. `find_writers` traces one tiny forward pass to see
which norms read a block's output, and records their gain on the writers of that block. A norm
whose output a block reads is a pre-norm and is left alone, even when the module before it added
the residual itself (BLOOM's attention, MPT's MLP), so that it reads that module's output.

Names are a guess about an unknown family, so the same trace checks them: a layer whose write still
carries a test direction with every found writer projected gets the writers the names missed found
by their effect (`_discover`), and what that cannot cover is named in a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from deccp_eval.backends.torch_utils import input_device
from deccp_eval.base.errors import UsageError
from deccp_eval.training.abliteration.direction import base_model, decoder_layers, stream_mean, text_config

log = logging.getLogger("deccp_eval")

OUT_NAMES: frozenset[str] = frozenset(
    {
        "o_proj",
        "o_b_proj",  # DeepSeek V4's grouped low-rank output (o_a_proj, then o_b_proj into the stream)
        "out_proj",
        "dense",
        "c_proj",
        "wo",
        "w2",
        "down_proj",
        "fc2",
        "fc_out",
        "dense_4h_to_h",
        "linear_out",
    }
)
FUSED_NAMES: frozenset[str] = frozenset({"down_proj", "w2"})
MIXER_WORDS: tuple[str, ...] = ("attn", "attention", "mixer", "temporal")  # RecurrentGemma: temporal_block


@dataclass
class Writer:
    """One residual writer: `module.<weight>` (and its bias, looked up live); `gain` is a post-norm's gain."""

    layer: int
    name: str  # qualified, e.g. "layers.3.mlp.experts.down_proj"
    role: str  # attention | mlp | experts | shared_expert
    module: Any
    weight: str = "weight"
    fused: bool = False  # [experts, ...] tensor, edited one expert at a time
    transposed: bool = False  # the (per-expert) matrix is [inner, hidden] (or a Conv1D): rows are written vectors
    gain: Any = None  # [hidden] float32 on the CPU, or None

    @property
    def param(self) -> Any:
        return getattr(self.module, self.weight)

    @property
    def bias_param(self) -> Any:
        """`bias` of a Linear, `<weight>_bias` ([experts, hidden]) of fused experts, or None."""
        return getattr(self.module, f"{self.weight}_bias" if self.fused else "bias", None)

    def direction(self, d: Any) -> Any:
        """The unit vector to remove from this writer's output so that the stream loses d."""
        import torch

        if self.gain is None:
            return d
        v = d.to(torch.float32) * self.gain.to(d.device)
        return (v / v.norm().clamp_min(1e-12)).to(d.dtype)


def _role(path: str, fused: bool) -> str:
    """Experts first: Nemotron-H calls every block, its MoE blocks too, a `mixer`."""
    parts = path.lower().split(".")
    if any("shared" in p for p in parts):
        return "shared_expert"
    if fused or any("expert" in p for p in parts):
        return "experts"
    if any(w in p for p in parts for w in MIXER_WORDS):
        return "attention"
    return "mlp"


def _fused_orientation(module: Any, param: Any, hidden: int) -> bool | None:
    """True when each expert's matrix is [inner, hidden]; None when the layout cannot be told."""
    if hasattr(module, "is_transposed"):
        return bool(module.is_transposed)
    rows, cols = int(param.shape[1]), int(param.shape[2])
    if rows == hidden and cols != hidden:
        return False
    if cols == hidden and rows != hidden:
        return True
    return None


def _is_conv1d(mod: Any) -> bool:
    """transformers' `Conv1D` (GPT-2 and its descendants), told by name and layout so no import is needed."""
    weight = getattr(mod, "weight", None)
    return (
        type(mod).__name__ == "Conv1D"
        and weight is not None
        and weight.dim() == 2
        and getattr(mod, "nf", None) == weight.shape[1]
    )


def _linear_writer(index: int, path: str, mod: Any, hidden: int) -> Writer | None:
    """`mod` as a writer when it is a linear map into the hidden size (nn.Linear, or a Conv1D, whose
    out = x @ W + b with W [in, out] makes its rows the written vectors), whatever its name; else None."""
    import torch

    if isinstance(mod, torch.nn.Linear) and mod.out_features == hidden:
        return Writer(index, f"layers.{index}.{path}", _role(path, False), mod)
    if _is_conv1d(mod) and mod.weight.shape[1] == hidden:
        return Writer(index, f"layers.{index}.{path}", _role(path, False), mod, transposed=True)
    return None


def layer_writers(layer: Any, index: int, hidden: int) -> list[Writer]:
    """Every writer inside one decoder layer (no tracing: names, shapes and module attributes)."""
    import torch

    found: list[Writer] = []
    for path, mod in layer.named_modules():
        if isinstance(mod, torch.nn.Linear) or _is_conv1d(mod):
            writer = _linear_writer(index, path, mod, hidden)
            if writer is not None and path.rsplit(".", 1)[-1] in OUT_NAMES:
                found.append(writer)
            continue
        for pname, p in mod.named_parameters(recurse=False):
            if pname not in FUSED_NAMES or p.dim() != 3:
                continue
            transposed = _fused_orientation(mod, p, hidden)
            if transposed is None:
                raise UsageError(
                    f"layers.{index}.{path}.{pname} {tuple(p.shape)}: cannot tell which axis is the "
                    f"hidden size {hidden}; this expert layout is not supported"
                )
            qual = f"layers.{index}.{path}.{pname}" if path else f"layers.{index}.{pname}"
            found.append(Writer(index, qual, _role(path, True), mod, weight=pname, fused=True, transposed=transposed))
    return found


def module_tree(layer: Any, limit: int = 60) -> str:
    """`path: Type [shapes]` lines for an error message."""
    lines = []
    for path, mod in layer.named_modules():
        shapes = ", ".join(f"{n} {tuple(p.shape)}" for n, p in mod.named_parameters(recurse=False))
        lines.append(f"  {path or '(layer)'}: {type(mod).__name__}" + (f" [{shapes}]" if shapes else ""))
    more = f"\n  ... {len(lines) - limit} more" if len(lines) > limit else ""
    return "\n".join(lines[:limit]) + more


def _first_tensor(x: Any) -> Any:
    import torch

    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (tuple, list)) and x and isinstance(x[0], torch.Tensor):
        return x[0]
    return None


def _norm_gain(norm: Any, hidden: int, device: Any, dtype: Any) -> Any:
    """g such that norm(y) = g * y / rms(y) (RMSNorm, any parameterisation); None for other norms."""
    import torch

    with torch.no_grad():
        ones = torch.ones(1, hidden, device=device, dtype=dtype)
        g = norm(ones).to(torch.float32).cpu()[0]
        probe = torch.randn(2, hidden, generator=torch.Generator().manual_seed(0)).to(device=device, dtype=dtype)
        out = norm(probe).to(torch.float32).cpu()
    p = probe.to(torch.float32).cpu()
    expect = g * p / p.pow(2).mean(-1, keepdim=True).sqrt()
    if not torch.allclose(out, expect, rtol=2e-2, atol=2e-3 * float(g.abs().max().clamp_min(1.0))):
        return None
    return g


PROBE_TOKENS = 3


def _probe(model: Any, handles: list[Any]) -> None:
    """One forward pass of PROBE_TOKENS tokens through the decoder with `handles` (hooks) attached, then removed."""
    import torch

    try:
        n_tokens = int(model.get_input_embeddings().num_embeddings)
        ids = (torch.arange(1, 1 + PROBE_TOKENS, device=input_device(model)) % n_tokens)[None]
        with torch.inference_mode():
            base_model(model)(input_ids=ids, use_cache=False)
    finally:
        for h in handles:
            h.remove()


def _trace_post_norms(model: Any, layers: Any, found: list[Writer]) -> None:
    """One short forward: a norm inside a layer whose input is a writer's (or its block's) output is a post-norm."""
    import torch

    hidden = int(text_config(model).hidden_size)
    outputs: dict[int, Any] = {}
    norm_inputs: dict[int, Any] = {}
    norm_outputs: dict[int, Any] = {}
    block_inputs: list[Any] = []  # what every other module of the layers reads: a pre-norm's output is among them
    handles = []
    by_layer: dict[int, list[Writer]] = {}
    for w in found:
        by_layer.setdefault(w.layer, []).append(w)
    owners: dict[int, list[Writer]] = {}  # id(module) -> writers it contains (itself or a block above it)
    norms: dict[int, tuple[int, Any]] = {}
    for i, layer in enumerate(layers):
        names = dict(layer.named_modules())
        for path, mod in names.items():
            if path and "norm" in type(mod).__name__.lower() and not list(mod.children()):
                norms[id(mod)] = (i, mod)
        for w in by_layer.get(i, []):
            rel = w.name.split(".", 2)[2]
            if w.fused:
                rel = rel.rsplit(".", 1)[0]
            parts = rel.split(".")
            for k in range(len(parts), 0, -1):
                mod = names.get(".".join(parts[:k]))
                if mod is not None:
                    owners.setdefault(id(mod), []).append(w)
    if not norms:
        return
    modules = {id(m): m for layer in layers for m in layer.modules()}

    def out_hook(mod: Any, _inp: Any, out: Any) -> None:
        t = _first_tensor(out)
        if t is not None:
            outputs.setdefault(id(mod), []).append(t.detach())

    def norm_hook(mod: Any, inp: Any) -> None:
        t = _first_tensor(inp)
        if t is not None:
            norm_inputs.setdefault(id(mod), []).append(t.detach())

    def norm_out_hook(mod: Any, _inp: Any, out: Any) -> None:
        t = _first_tensor(out)
        if t is not None:
            norm_outputs.setdefault(id(mod), []).append(t.detach())

    def input_hook(_mod: Any, args: Any, kwargs: Any) -> None:
        t = _first_tensor(args) if args else _first_tensor(kwargs.get("hidden_states"))
        if t is not None:
            block_inputs.append(t.detach())

    for key in owners:
        handles.append(modules[key].register_forward_hook(out_hook))
    for _key, (_, mod) in norms.items():
        handles.append(mod.register_forward_pre_hook(norm_hook))
        handles.append(mod.register_forward_hook(norm_out_hook))
    for key, mod in modules.items():
        if key not in norms and list(mod.children()):  # blocks (attention, MLP), not their leaf layers
            handles.append(mod.register_forward_pre_hook(input_hook, with_kwargs=True))
    _probe(model, handles)
    for key, ins in norm_inputs.items():
        layer_idx, norm = norms[key]
        if any(a.shape == b.shape and torch.equal(a, b) for a in norm_outputs.get(key, []) for b in block_inputs):
            # a block reads what this norm outputs: it is a pre-norm, reading a stream that some module
            # already added its write to (BLOOM's attention, MPT's MLP), not a post-norm of the write
            continue
        for owner, outs in outputs.items():
            if any(a.shape == b.shape and torch.equal(a, b) for a in ins for b in outs):
                gain = _norm_gain(norm, hidden, ins[0].device, ins[0].dtype)
                if gain is None:
                    raise UsageError(
                        f"layer {layer_idx}: {type(norm).__name__} normalises a residual write and is "
                        "not an RMSNorm; abliteration cannot account for it"
                    )
                for w in owners[owner]:
                    if w.layer == layer_idx:
                        w.gain = gain


def _no_writer(model: Any, layer: Any, index: int, hidden: int) -> UsageError:
    return UsageError(
        f"{type(model).__name__} decoder layer {index}: no module writes the residual stream in a "
        f"way deccp-eval recognises (an nn.Linear or Conv1D named {'/'.join(sorted(OUT_NAMES))} with "
        f"{hidden} outputs, or a fused 3-D expert {'/'.join(sorted(FUSED_NAMES))} tensor, or one whose output, "
        f"projected off a test direction, takes the direction out of the layer's write). Its modules:\n"
        f"{module_tree(layer)}"
    )


def find_writers(model: Any, trace: bool = True) -> list[Writer]:
    """Every residual writer of every decoder layer, in order; a clear error when a layer has none.

    Writers are found by name (`layer_writers`); with `trace`, one tiny forward pass then finds the norms
    that re-normalise a write (post-norms), and a layer whose write still carries a test direction gets
    the writers the names missed found by what they do (`_discover`); what even that leaves is named in a
    warning."""
    layers = decoder_layers(model)
    hidden = int(text_config(model).hidden_size)
    found: list[Writer] = []
    empty: list[int] = []
    for i, layer in enumerate(layers):
        mine = layer_writers(layer, i, hidden)
        if not mine:
            if not trace:
                raise _no_writer(model, layer, i, hidden)
            empty.append(i)
        found += mine
    if not trace:
        return found
    try:
        _trace_post_norms(model, layers, found)
        uncovered = uncovered_layers(model, layers, found)
        if uncovered:
            extra = _discover(model, layers, found, [i for i, _ in uncovered])
            if extra:
                found = sorted(found + extra, key=lambda w: w.layer)
                uncovered = uncovered_layers(model, layers, found)
    except Exception:
        if empty:  # the probe could not run: the layer without a writer is the error to report
            raise _no_writer(model, layers[empty[0]], empty[0], hidden) from None
        raise
    for i in empty:
        if not any(w.layer == i for w in found):
            raise _no_writer(model, layers[i], i, hidden)
    if uncovered:
        log.warning(
            "%s: with every recognised writer's output projected off a test direction, decoder layer(s) %s "
            "still add to the stream along it (largest share %.2g): a residual writer is not recognised "
            "(or the stream is re-normalised), so an edit there is partial",
            type(model).__name__,
            ", ".join(str(i) for i, _ in uncovered),
            max(share for _, share in uncovered),
        )
    return found


def _candidates(layer: Any, index: int, hidden: int, known: set[int]) -> list[Writer]:
    """The layer's hidden-sized linear maps, whatever their names, that are not writers already."""
    found = (_linear_writer(index, path, mod, hidden) for path, mod in layer.named_modules() if id(mod) not in known)
    return [w for w in found if w is not None]


def _discover(model: Any, layers: Any, found: list[Writer], uncovered: list[int]) -> list[Writer]:
    """Writers the name rules missed, found by what they do (CPM-Ant's `attention_out` and `w_out`, xLSTM's
    `proj_down`, a shared MLP's `output_linear`): in each uncovered layer, every hidden-sized linear map's
    output is projected off the test direction; if that covers the layer, each map is dropped in turn
    (the k-th of every layer in the same pass) and kept only where the layer is uncovered without it.
    Input projections that happen to be hidden-sized are dropped that way. A few tiny passes."""
    hidden = int(text_config(model).hidden_size)
    known = {id(w.module) for w in found}
    trial = {i: c for i in uncovered if (c := _candidates(layers[i], i, hidden, known))}
    if not trial:
        return []
    try:
        _trace_post_norms(model, layers, [w for c in trial.values() for w in c])
    except UsageError:  # a candidate's output is re-normalised in a way no edit accounts for
        return []

    def still_uncovered(active: dict[int, list[Writer]]) -> set[int]:
        return {i for i, _ in uncovered_layers(model, layers, found + [w for c in active.values() for w in c])}

    first = still_uncovered(trial)
    active = {i: list(c) for i, c in trial.items() if i not in first}
    for k in range(max((len(c) for c in trial.values()), default=0)):
        dropped = {i: trial[i][k] for i in active if k < len(trial[i])}
        if not dropped:
            continue
        test = {i: [w for w in c if w is not dropped.get(i)] for i, c in active.items()}
        missing = still_uncovered(test)  # a layer uncovered without its k-th map keeps it
        active = {i: (active[i] if i in missing else test[i]) for i in active}
    extra = [w for c in active.values() for w in c]
    if extra:
        log.info(
            "%s: residual writers found by their effect, not their name: %s",
            type(model).__name__,
            ", ".join(sorted({w.name.split(".", 2)[2] for w in extra})),
        )
    return extra


def uncovered_layers(model: Any, layers: Any, found: list[Writer], tolerance: float = 1e-3) -> list[tuple[int, float]]:
    """Layers that still write along a random unit d when every found writer's output has d (behind any
    post-norm) projected off, with the share |d . write| / |write| of each: a writer the name rules missed
    (GPT-J's `fc_out` was one) shows here instead of as an edit that silently leaves part of the direction."""
    import torch

    hidden = int(text_config(model).hidden_size)
    d = torch.randn(hidden, generator=torch.Generator().manual_seed(0))
    d = d / d.norm()
    shares: dict[int, float] = {}

    def project(writer: Writer) -> Any:
        def hook(_mod: Any, _inp: Any, out: Any) -> Any:
            t = _first_tensor(out)
            if t is None:
                return out
            v = writer.direction(d.to(t.device)).to(t.dtype)
            t = t - (t @ v).unsqueeze(-1) * v
            return t if isinstance(out, torch.Tensor) else (t, *out[1:])

        return hook

    def measure(index: int) -> Any:
        def hook(_mod: Any, args: Any, kwargs: Any, out: Any) -> None:
            x = args[0] if args else kwargs.get("hidden_states")
            y = _first_tensor(out)
            if x is None or y is None or x.shape != y.shape or y.shape[0] != 1 or y.shape[1] < PROBE_TOKENS:
                return  # not [batch, sequence, ...] (Gemma 3n's streams come first): the direction pass says so
            write = stream_mean((y - x).to(torch.float32), hidden, lead=2)  # hyper-connections: their mean
            along = float((write @ d.to(write.device)).abs().max())
            shares[index] = along / max(float(write.norm(dim=-1).max()), 1e-12)

        return hook

    handles = [w.module.register_forward_hook(project(w)) for w in found]
    handles += [layer.register_forward_hook(measure(i), with_kwargs=True) for i, layer in enumerate(layers)]
    _probe(model, handles)
    return [(i, share) for i, share in sorted(shares.items()) if share > tolerance]


_CACHE_ATTR = "_deccp_writers"


def writers_of(model: Any) -> list[Writer]:
    """`find_writers`, cached on the model (the trace runs once per loaded model)."""
    cached = getattr(model, _CACHE_ATTR, None)
    if cached is None:
        cached = find_writers(model)
        object.__setattr__(model, _CACHE_ATTR, cached)
    return cached
