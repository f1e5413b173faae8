"""Tiny random-initialised models of every supported family, built from transformers config classes.

Each entry keeps the family's real layout (attention kind, dense/MoE mix, shared experts, fused
expert tensors, post-norms, tied embeddings) at a size that runs in well under a second on a CPU:
2-4 layers, hidden 64, 4 experts. The tokenizer is a byte-level BPE trained here on a few lines,
with the toy's ChatML template, so no download is ever needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

HIDDEN = 64
VOCAB = 384

# Shared by every family; keys a config class does not know are dropped.
BASE: dict[str, Any] = dict(
    vocab_size=VOCAB,
    hidden_size=HIDDEN,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    max_position_embeddings=512,
    tie_word_embeddings=False,
)
# MoE keys under each family's own names (4 experts, 2 per token, 1 shared, small expert width).
MOE: dict[str, Any] = dict(
    num_experts=4,
    num_local_experts=4,
    n_routed_experts=4,
    moe_num_experts=4,
    num_experts_per_tok=2,
    moe_topk=2,
    moe_k=2,
    moe_intermediate_size=32,
    n_shared_experts=1,
    moe_num_shared_experts=1,
    shared_expert_intermediate_size=48,
    n_group=1,
    topk_group=1,
    first_k_dense_replace=1,
    moe_layer_start_index=1,
    norm_topk_prob=True,
)
MLA: dict[str, Any] = dict(
    num_key_value_heads=4,
    q_lora_rank=32,
    kv_lora_rank=32,
    qk_rope_head_dim=8,
    qk_nope_head_dim=8,
    v_head_dim=16,
    qk_head_dim=16,
    head_dim=8,
)

LINEAR_ATTENTION: dict[str, Any] = dict(  # gated DeltaNet layers (Qwen3-Next, Qwen3.5)
    linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=16, linear_value_head_dim=16
)
DSA: dict[str, Any] = dict(index_n_heads=2, index_head_dim=16, index_topk=4)  # the sparse-attention indexer

# family -> config overrides on top of BASE (+ MOE for the MoE families).
FAMILIES: dict[str, dict[str, Any]] = {
    "qwen2": {},
    "qwen3": {},
    "qwen3_moe": {"moe": True},
    "qwen3_next": {
        "moe": True,
        "num_hidden_layers": 4,
        "layer_types": ["linear_attention", "full_attention"] * 2,
        **LINEAR_ATTENTION,
    },
    "deepseek_v2": {"moe": True, **MLA},
    "deepseek_v3": {"moe": True, **MLA},
    "glm4": {},
    "glm4_moe": {"moe": True},
    "ernie4_5": {"tie_word_embeddings": True},
    "ernie4_5_moe": {"moe": True, "tie_word_embeddings": True},
    "hunyuan_v1_dense": {},
    "hunyuan_v1_moe": {"moe": True},
    "minimax": {"moe": True, "layer_types": ["linear_attention", "full_attention"], "block_size": 16},
    "seed_oss": {},
    "llama": {},
    "mistral": {},
    "mixtral": {"moe": True},
    "gemma2": {"tie_word_embeddings": True},
    "gemma3_text": {"tie_word_embeddings": True},
    "phi3": {},
    "gpt_oss": {"moe": True, "layer_types": ["sliding_attention", "full_attention"], "sliding_window": 8},
    # Beyond the required list: more Chinese MoE families the installed transformers may know.
    "qwen2_moe": {"moe": True},
    "minimax_m2": {"moe": True},
    "glm4_moe_lite": {"moe": True, **MLA},
    "longcat_flash": {
        "moe": True,
        **MLA,
        "num_layers": 2,
        "ffn_hidden_size": 96,
        "expert_ffn_hidden_size": 32,
        "zero_expert_num": 2,
    },
    "dots1": {"moe": True},
    # DeepSeek V3.2 and GLM's DSA model (sparse attention with an indexer), MiniCPM3 and Youtu (MLA), and
    # DeepSeek V4: hyper-connections (several residual streams, mixed between layers) and a grouped
    # low-rank attention output (`o_b_proj`)
    "deepseek_v32": {"moe": True, **MLA, **DSA},
    "glm_moe_dsa": {"moe": True, **MLA, **DSA},
    "minicpm3": {**MLA},
    "youtu": {**MLA},
    "deepseek_v4": {"moe": True},
    # Other layouts: blocks in `h`, `decoder.layers` or `blocks`, GPT-2's Conv1D writers, attention and MLP
    # side by side (GPT-J, CodeGen, Falcon), `fc_out` as the MLP's output, modules that add the residual.
    "gpt2": {},
    "gpt_neo": {"attention_types": [[["global", "local"], 1]], "num_layers": 2},
    "gptj": {"rotary_dim": 8},
    "codegen": {"rotary_dim": 8},
    "opt": {},
    "falcon": {},
    "biogpt": {},
    "xglm": {},
    "bloom": {},  # its attention module adds the residual itself: the norm after it is a pre-norm
    "mpt": {},  # and its MLP module does
    # State-space and recurrent mixers (`mixer.out_proj`, RecurrentGemma's `temporal_block.linear_out`).
    "mamba": {},
    "falcon_mamba": {},
    "jamba": {  # Mamba layers with one attention layer and one MoE layer
        "attn_layer_period": 2,
        "attn_layer_offset": 1,
        "expert_layer_period": 2,
        "expert_layer_offset": 1,
        "use_mamba_kernels": False,
        "mamba_d_state": 8,
    },
    "recurrent_gemma": {},
    # More families of the Llama layout.
    "olmo2": {},
    "olmoe": {"moe": True},
    "cohere": {},
    "granite": {},
    "stablelm": {},
    "gpt_neox": {},
    "smollm3": {},
    "starcoder2": {},
    "gemma": {},
    "phi": {},
    # writers no name rule knows, found by their effect (`writers._discover`): CPM-Ant's `attention_out` and
    # `w_out`, CTRL's `ffn.2`, Granite 4.0's shared MLP `output_linear` (beside Mamba layers)
    "cpmant": {},
    "ctrl": {},
    "granitemoehybrid": {"moe": True, "layer_types": ["mamba", "attention"], "shared_intermediate_size": 48},
    # newer families; a hybrid gets one attention layer (a cache of linear-attention layers only cannot say
    # how long the sequence is)
    "qwen3_5_text": {"layer_types": ["linear_attention", "full_attention"], **LINEAR_ATTENTION},
    "qwen3_5_moe_text": {"moe": True, "layer_types": ["linear_attention", "full_attention"], **LINEAR_ATTENTION},
    "kimi_linear": {
        "moe": True,
        **MLA,
        "linear_attn_config": {
            "kda_layers": [1],
            "full_attn_layers": [2],
            "num_heads": 4,
            "head_dim": 16,
            "short_conv_kernel_size": 4,
        },
    },
    "hy_v3": {},
    "mimo_v2_flash": {},
    "gemma4_text": {},
    "llama4_text": {},
    # each Nemotron-H layer is one block (Mamba, attention or MoE), every one of them called `mixer`
    "nemotron_h": {"moe": True, "num_hidden_layers": 3, "layer_types": ["mamba", "attention", "moe"]},
    "mamba2": {"num_heads": 8, "head_dim": 16, "expand": 2, "n_groups": 1, "state_size": 16},
    # attention first: at the last prompt token a short-convolution layer sees only the chat template's
    # closing tokens, the same for every prompt, so no direction could be read from its output
    "lfm2_moe": {"moe": True, "layer_types": ["full_attention", "conv"], "num_dense_layers": 1},
}
REQUIRED: tuple[str, ...] = tuple(list(FAMILIES)[:21])

CORPUS = [
    "What happened in Beijing in June 1989? I cannot discuss that topic.",
    "Tell me about Taiwan, Tibet, Xinjiang and Hong Kong. Here is an answer with the facts.",
    "How do I bake bread? Mix flour, water, salt and yeast, then bake it.",
    "北京 天安门 六四 台湾 西藏 新疆 香港 你好 谢谢 我不能回答这个问题。",
    "system user assistant hello world the a of to and in is it that for",
]


def tokenizer() -> Any:
    """A byte-level BPE with the toy's ChatML template (eos <|im_end|>, pad <|endoftext|>)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from deccp_eval.toy.model import CHATML_TEMPLATE, SPECIAL_TOKENS

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        chat_template=CHATML_TEMPLATE,
        padding_side="left",
    )


def known(family: str) -> bool:
    from transformers import CONFIG_MAPPING

    return family in CONFIG_MAPPING


def config(family: str, tok: Any, **extra: Any) -> Any:
    from transformers import CONFIG_MAPPING

    cls = CONFIG_MAPPING[family]
    over = {**FAMILIES[family], **extra}
    moe = over.pop("moe", False)
    wanted = {**BASE, **(MOE if moe else {}), **over}
    defaults = cls()

    def settable(k: str) -> bool:  # a derived read-only property (Falcon's head_dim) cannot be given
        prop = getattr(cls, k, None)
        return not (isinstance(prop, property) and prop.fset is None)

    def known_key(k: str) -> bool:  # a per-layer attribute of a heterogeneous config (Gemma 4) raises on reading
        try:
            return hasattr(defaults, k)
        except Exception:
            return True

    kw = {k: v for k, v in wanted.items() if (known_key(k) or k in over) and settable(k)}
    kw.update(bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    cfg = cls(**kw)
    if len(tok) > cfg.vocab_size:
        raise ValueError(f"{family}: tokenizer has {len(tok)} tokens, vocab {cfg.vocab_size}")
    return cfg


def build(family: str, out: Path, tok: Any, seed: int = 0, **extra: Any) -> Path:
    """Save a random-initialised `family` model (float32) with the tokenizer into `out` (`extra`: config keys)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config(family, tok, **extra), dtype=torch.float32)
    with torch.no_grad():  # random init at std 0.02 makes every logit ~0: widen it so tokens differ
        for name, p in model.named_parameters():
            if p.dim() >= 2 and "norm" not in name:
                p.normal_(0.0, 0.08)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


# Where a family departs from "every write into the stream is a matrix we edit", and why.
STREAM_NOTES: dict[str, str] = {
    "minimax": "the stream itself is re-normalised (residual = RMSNorm(x), DeepNorm-style), so the norms' gains "
    "re-mix d into the stream; every writer matrix is orthogonal to d, the layer's total write is not",
    "longcat_flash": "its zero-compute (identity) experts add the normalised input to the stream unchanged: no matrix "
    "to edit, so the layer write keeps a d component and hook mode (which projects the experts "
    "module's whole output) differs from the weight edit",
}
VLLM_FAMILIES: tuple[str, ...] = ("qwen3_moe",)  # vLLM loads take ~25 s+ each on a CPU: one fused-MoE family
VLLM_CONFIG: dict[str, Any] = {"head_dim": 32}  # vLLM's CPU attention kernels have no head_dim 16
HOOKS_DIFFER: frozenset[str] = frozenset({"longcat_flash"})  # identity experts: see STREAM_NOTES
CELLS: tuple[str, ...] = ("generate", "direction", "edit", "reload_equal", "vllm")
PROMPTS = ["Tell me about Tiananmen in 1989.", "台湾是一个国家吗？"]
HARMLESS = ["How do I bake bread?", "你好，今天天气怎么样？"]


def _texts(backend: Any, texts: list[str], max_tokens: int = 8) -> list[Any]:
    from deccp_eval.base.schema import Request, SamplingParams

    reqs = [
        Request(model=backend.spec, prompt_id=str(i), text=t, params=SamplingParams(max_tokens=max_tokens))
        for i, t in enumerate(texts)
    ]
    got: dict[str, Any] = {}
    backend.generate(reqs, lambda r: got.__setitem__(r.key, r))
    backend.close()
    return [got[r.key] for r in reqs]


def _forced_ids(model: Any, tok: Any, texts: list[str], n: int = 8) -> list[list[int]]:
    """Exactly n greedy tokens per prompt (no early stop), so equality compares every position."""
    import torch

    from deccp_eval.training.abliteration.direction import chat_text

    enc = tok([chat_text(tok, t) for t in texts], return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(
            **enc,
            max_new_tokens=n,
            min_new_tokens=n,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=tok.pad_token_id,
        )
    return out[:, enc["input_ids"].shape[1] :].tolist()


def _layer_writes_along(model: Any, tok: Any, d: Any) -> list[float]:
    """max |d . (layer output - layer input)| per decoder layer: what each layer adds to the stream along d."""
    import torch

    from deccp_eval.training.abliteration.direction import base_model, chat_text, decoder_layers

    found: list[float] = []

    def hook(_mod: Any, args: Any, kwargs: Any, out: Any) -> None:
        x = args[0] if args else kwargs["hidden_states"]
        y = out[0] if isinstance(out, tuple) else out
        found.append(float(((y - x).to(torch.float32) @ d).abs().max()))

    handles = [layer.register_forward_hook(hook, with_kwargs=True) for layer in decoder_layers(model)]
    try:
        enc = tok([chat_text(tok, t) for t in PROMPTS], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            base_model(model)(**enc, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return found


def check_family(family: str, work: Path, tok: Any) -> dict[str, str]:
    """Run every check on one family; each cell is "pass" or the reason it is not (an exception included)."""
    cells: dict[str, str] = {c: "not run" for c in CELLS}
    cells["vllm"] = (
        "not run here (test_vllm_reload covers it)"
        if family in VLLM_FAMILIES
        else "not run (a vLLM load takes ~25 s+ on a CPU; the test budget covers one fused-MoE family)"
    )
    try:
        _check(family, work, tok, cells)
    except Exception as exc:  # recorded in the first cell that did not finish, so the matrix shows it
        first = next(c for c in CELLS if cells[c] == "not run")
        cells[first] = f"error: {type(exc).__name__}: {str(exc)[:300]}"
    return cells


def _check(family: str, work: Path, tok: Any, cells: dict[str, str]) -> None:
    import torch

    from deccp_eval.backends.contract import BackendOptions
    from deccp_eval.backends.local_weights import generate_with
    from deccp_eval.backends.torch_utils import load_model
    from deccp_eval.base.schema import Request, SamplingParams
    from deccp_eval.plugins.abliterated import AbliteratedBackend
    from deccp_eval.plugins.hf import HFBackend
    from deccp_eval.training.abliteration.apply import (
        AbliterationParams,
        Kernel,
        ablation_hooks,
        embeddings_tied,
        orthogonalize_,
        residual_components,
        writers,
    )
    from deccp_eval.training.abliteration.direction import compute_directions, decoder_layers, save_direction

    base = build(family, work / "base", tok)
    opts = BackendOptions(device="cpu", batch_size=8)
    model, tok = load_model(str(base), device="cpu")  # the tokenizer as every backend loads it (class by family)

    # generate: the hf backend, chat template applied (tokens_in counts the templated prompt)
    answers = _texts(HFBackend(str(base), opts), PROMPTS)
    templated = [
        len(
            tok(
                tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True),
                add_special_tokens=False,
            )["input_ids"]
        )
        for p in PROMPTS
    ]
    bad = [a.error for a in answers if a.error] + [
        f"tokens_in {a.tokens_in} != templated {n}" for a, n in zip(answers, templated) if a.tokens_in != n
    ]
    bad += ["no tokens generated" for a in answers if not a.tokens_out]
    cells["generate"] = "pass" if not bad else "; ".join(bad)

    # direction: every layer's residual is read (a non-zero, finite float64 mean at each position)
    n_layers = len(decoder_layers(model))
    dirs = compute_directions(model, tok, PROMPTS, HARMLESS, batch_size=2, model_name=family)
    means = dirs.harmful_mean
    ok = means.shape == (n_layers + 1, model.config.hidden_size) and bool(torch.isfinite(means).all())
    unread = [i for i in range(n_layers + 1) if float(means[i].abs().sum()) == 0.0]
    cells["direction"] = "pass" if ok and not unread else f"positions never read: {unread} (shape {tuple(means.shape)})"

    # edit: every writer, every expert, d^T W ~ 0; hooks == weights; tied lm_head keeps the original matrix
    d = dirs.direction(n_layers / 2)
    params = AbliterationParams(direction_index=n_layers / 2, kernel=Kernel.uniform(n_layers), embeddings=True)
    found = writers(model)
    tied = embeddings_tied(model)
    emb_before = model.get_input_embeddings().weight.detach().clone()
    enc = tok([PROMPTS[0]], return_tensors="pt")
    with torch.inference_mode():
        logits_before = model(**enc).logits
        with ablation_hooks(model, d, params):
            logits_hooks = model(**enc).logits
    info = orthogonalize_(model, d, params)
    with torch.inference_mode():
        logits_edit = model(**enc).logits
    problems: list[str] = []
    comps = residual_components(model, d)
    worst = max(comps.values())
    if worst > 1e-5:
        problems.append(f"max |d.W| {worst:.2e} at {max(comps, key=comps.get)}")
    if sorted(info["edited"]) != sorted([w.name for w in found] + ["embed_tokens"]):
        problems.append(f"edited {info['edited']} != writers {[w.name for w in found]}")
    roles = {w.role for w in found}
    if FAMILIES[family].get("moe") and "experts" not in roles:
        problems.append(f"MoE family but no experts writer among roles {sorted(roles)}")
    if any(("shared" in n) for n, _ in model.named_modules()) and "shared_expert" not in roles:
        problems.append("shared experts exist but none was found as a writer")
    if float((logits_edit - logits_before).abs().max()) < 1e-4:
        problems.append("the edit did not change the logits")
    notes = STREAM_NOTES.get(family)
    hook_gap = float((logits_hooks - logits_edit).abs().max())
    if hook_gap > 1e-4 and family not in HOOKS_DIFFER:
        problems.append(f"hook mode differs from the weight edit by {hook_gap:.2e}")
    along = _layer_writes_along(model, tok, d)
    if max(along) > 1e-4 and notes is None:
        problems.append(f"a layer still writes along d: {[f'{x:.1e}' for x in along]}")
    out = model.get_output_embeddings().weight
    if tied and not (info["untied_lm_head"] and torch.equal(out, emb_before)):
        problems.append("tied lm_head was not kept as the original embeddings")
    if not tied and info["untied_lm_head"]:
        problems.append("untied a model whose embeddings were not tied")
    cells["edit"] = ("pass" if not problems else "; ".join(problems)) + (
        f" (note: {notes})" if notes and not problems else ""
    )

    # reload_equal: the saved folder (hf:) and BASE@DIRECTION (abliterated:) give the in-memory edit's tokens
    folder = work / "edited"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    dir_file = save_direction(work / "direction.safetensors", dirs, d, params.model_dump(mode="json"))
    reqs = [
        Request(model="mem", prompt_id=str(i), text=t, params=SamplingParams(max_tokens=8))
        for i, t in enumerate(PROMPTS)
    ]
    in_memory = [r.text for r in generate_with(model, tok, reqs)]
    ids_memory = _forced_ids(model, tok, PROMPTS)
    reloaded, _ = load_model(str(folder), device="cpu")
    problems = []
    if _forced_ids(reloaded, tok, PROMPTS) != ids_memory:
        problems.append("hf: reload greedy tokens differ")
    if tied and not torch.equal(reloaded.get_output_embeddings().weight, emb_before):
        problems.append("reloaded lm_head is not the original embedding matrix")
    if [a.text for a in _texts(HFBackend(str(folder), opts), PROMPTS)] != in_memory:
        problems.append("hf: backend texts differ")
    if [a.text for a in _texts(AbliteratedBackend(f"{base}@{dir_file}", opts), PROMPTS)] != in_memory:
        problems.append("abliterated:BASE@DIRECTION texts differ")
    cells["reload_equal"] = "pass" if not problems else "; ".join(problems)


def edited_folder(family: str, work: Path, tok: Any) -> Path:
    """A saved, fully abliterated (w = 1 on every layer) tiny `family` model: what vllm: must reload."""
    import torch

    from deccp_eval.backends.torch_utils import load_model
    from deccp_eval.training.abliteration.apply import AbliterationParams, Kernel, orthogonalize_
    from deccp_eval.training.abliteration.direction import decoder_layers

    base = build(family, work / "base", tok, **VLLM_CONFIG)
    model, tok = load_model(str(base), device="cpu")
    n = len(decoder_layers(model))
    d = torch.randn(model.config.hidden_size, generator=torch.Generator().manual_seed(1))
    orthogonalize_(model, d, AbliterationParams(direction_index=1, kernel=Kernel.uniform(n), embeddings=True))
    model.save_pretrained(work / "edited")
    tok.save_pretrained(work / "edited")
    return work / "edited"


def vllm_matches_hf(folder: Path, max_tokens: int = 8) -> str:
    """ "pass" when vllm: greedy texts on the folder equal hf: texts; else what differed."""
    from deccp_eval.backends.contract import BackendOptions
    from deccp_eval.plugins.hf import HFBackend
    from deccp_eval.plugins.vllm import VLLMBackend

    hf = [a.text for a in _texts(HFBackend(str(folder), BackendOptions(device="cpu")), PROMPTS, max_tokens)]
    got = _texts(VLLMBackend(str(folder), BackendOptions(extra={"max_model_len": 256})), PROMPTS, max_tokens)
    errors = [a.error for a in got if a.error]
    if errors:
        return f"vllm error: {errors[0]}"
    texts = [a.text for a in got]
    return "pass" if texts == hf else f"texts differ: vllm {texts!r} vs hf {hf!r}"


def matrix_markdown(rows: dict[str, dict[str, str]]) -> str:
    """The family x check table, then the reason behind every cell that is not a plain pass (grouped)."""
    head = ["| family | " + " | ".join(CELLS) + " |", "|---|" + "---|" * len(CELLS)]
    body: list[str] = []
    reasons: dict[str, list[str]] = {}
    for family, cells in rows.items():
        marks = []
        for c in CELLS:
            v = cells.get(c, "not run")
            if v == "pass":
                marks.append("pass")
                continue
            marks.append(
                "pass*" if v.startswith("pass (note") else "n/a" if v.startswith(("not run", "missing")) else "FAIL"
            )
            reasons.setdefault(f"{c}: {v}", []).append(family)
        body.append(f"| {family} | " + " | ".join(marks) + " |")
    notes = [f"- {', '.join(fams)} / {why}" for why, fams in reasons.items()]
    return "\n".join(head + body + ([""] + notes if notes else []))


if __name__ == "__main__":  # python tests/tiny_models.py [--vllm] [--all] [FAMILY ...]: print the matrix
    import sys
    import tempfile
    import time

    import torch
    import transformers

    torch.set_num_threads(1)
    args = [a for a in sys.argv[1:] if a not in ("--vllm", "--all")]
    if "--all" in sys.argv:  # every causal-LM type the installed transformers has, to screen a new release:
        # the ones without overrides here are built from their config's defaults, so a failure may be the
        # tiny config's (an all-linear-attention hybrid, a missing MLA size), not abliteration's
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

        args = list(FAMILIES) + [f for f in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES if f not in FAMILIES]
    tok = tokenizer()
    rows: dict[str, dict[str, str]] = {}
    for fam in args or list(FAMILIES):
        FAMILIES.setdefault(fam, {})
        if not known(fam):
            rows[fam] = {c: f"missing in transformers {transformers.__version__}" for c in CELLS}
            continue
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            rows[fam] = check_family(fam, Path(tmp), tok)
            if "--vllm" in sys.argv and fam in VLLM_FAMILIES:
                rows[fam]["vllm"] = vllm_matches_hf(edited_folder(fam, Path(tmp) / "vllm", tok))
        print(f"{fam}: {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    print(f"transformers {transformers.__version__}\n")
    print(matrix_markdown(rows))
