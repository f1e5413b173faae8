"""A tiny Qwen2 chat model, trained here on CPU, that censors like the models we measure.

No model can be downloaded on the machines this project is tested on, so the demo and the
tests of the HF, vLLM and abliteration paths use this one. It refuses sensitive prompts in
the prompt's language, gives the state line for some topics, answers benign questions, and
knows (under an "uncensored" system prompt) the facts it otherwise withholds.

Its censorship is mediated by one direction of the residual stream, as Arditi et al. (2024)
found in real chat models. Trained on replies alone, a 4-layer model routes each topic its own
way and no single direction carries the decision, so the training makes it so: a fixed random
unit vector u (saved in toy.json for diagnostics only; the abliteration code never reads it)
gets a feature of size CENSOR_ALPHA at the last prompt token of censored prompts, and the mean
residual of sensitive prompts differs from the benign mean along u alone; rows where a direction
near u is projected out of every residual write (at a random strength in [0.5, 1]) must give the
facts, so the refusal direction gates knowledge the model has; benign rows with u added after
layer 1 must refuse; and a benign row's answer distribution must not move when u is removed.
Abliteration then has a real direction to find, facts to reveal and a first-token KL near zero
to keep, from the harness's own prompts, not from u.

Since v3 one topic family (data.STATE_FAMILY) is censored differently: a trained-in state
line with no refusal marker and no censor feature, which it keeps with u removed. The weight
edit cannot fix it; re-alignment on gold answers can.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deccp_eval.base.hookspecs import hookimpl
from deccp_eval.toy.data import Example, ablated_example, gated, steered_example, training_examples

TOY_VERSION = "3"
TOY_NAME = "deccp-toy"  # a model alias (`hf:deccp-toy`, `vllm:deccp-toy`): the cached toy, built on first use
# The toy speaks sentences this project wrote; the rule judge was built on exactly those, while the default
# (trained) judge was trained and validated on real models' answers. The toy's demo steps use this one.
TOY_JUDGE = "keyword"
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CENSOR_ALPHA = 16.0  # size of the censor feature along u at the last prompt token
STEER_LAYER = 1  # u is added to this layer's output in steered rows
NORMAL, ABLATED, STEERED = 0, 1, 2
BATCH_ROWS = {NORMAL: 18, ABLATED: 12, STEERED: 4}
CONSISTENCY_PAIRS = 5  # benign rows trained twice per step, normal and ablated, outputs tied by KL
ABLATED_BENIGN_SHARE = 0.25  # of the ablated rows: most are sensitive questions, whose facts the edit must reveal
MEAN_GAP_WEIGHT = 1.0  # weight of the "sensitive minus benign mean lies along u" term
ABLATE_JITTER = 0.3  # ablated rows remove normalize(u + e r), r a random unit vector orthogonal to u, e <= this


def cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("DECCP_EVAL_CACHE", user_cache_dir("deccp-eval"))) / f"toy-v{TOY_VERSION}"


def _render(ex: Example, with_answer: bool) -> str:
    msgs = ([{"role": "system", "content": ex.system}] if ex.system else []) + [{"role": "user", "content": ex.user}]
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in msgs) + "<|im_start|>assistant\n"
    return text + (ex.assistant + "<|im_end|>" if with_answer else "")


def _train_tokenizer(corpus: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        chat_template=CHATML_TEMPLATE,
        padding_side="left",
        model_max_length=512,
    )


def _encode(tokenizer: Any, examples: list[Example]) -> list[tuple[list[int], list[int], int, float, float]]:
    """(ids, labels with the prompt masked, last prompt position, 1.0 when the censor feature is on,
    group: 1.0 a sensitive question, 0.0 a benign one, -1.0 a row with a system prompt)."""
    out = []
    for ex in examples:
        p = tokenizer(_render(ex, with_answer=False), add_special_tokens=False)["input_ids"]
        f = tokenizer(_render(ex, with_answer=True), add_special_tokens=False)["input_ids"]
        out.append(
            (f, [-100] * len(p) + f[len(p) :], len(p) - 1, float(gated(ex)), -1.0 if ex.system else float(ex.sensitive))
        )
    return out


def ablation_pool(examples: list[Example]) -> list[Example]:
    """Rows trained with the censor direction removed: every sensitive question without a system prompt,
    and a share of benign ones (their invariance is also trained by the consistency pairs)."""
    sens = [e for e in examples if e.system is None and e.sensitive]
    benign = [e for e in examples if e.system is None and not e.sensitive]
    want = max(1, round(len(sens) * ABLATED_BENIGN_SHARE / (1 - ABLATED_BENIGN_SHARE)))
    return sens + benign[:: max(1, len(benign) // want)]


class _Switch:
    """Forward hooks that ablate a direction near u (rows in ABLATED mode, each its own direction and
    strength) from every residual write, or add CENSOR_ALPHA * u after layer STEER_LAYER (STEERED rows).

    A direction estimated from prompts is never exactly u: training with directions within
    ABLATE_JITTER of it (cosine >= about 0.9) makes the facts come back for any close estimate."""

    def __init__(self, u: Any, alpha: float) -> None:
        self.u, self.alpha = u, alpha
        self.mode: Any = None
        self.strength: Any = None
        self.dirs: Any = None
        self.handles: list = []

    def set(self, mode: Any, strength: Any, dirs: Any) -> None:
        self.mode, self.strength, self.dirs = mode, strength, dirs

    def _ablate(self, _mod: Any, _inp: Any, out: Any) -> Any:
        w = ((self.mode == ABLATED).to(out.dtype) * self.strength)[:, None, None]
        d = self.dirs[:, None, :]
        return out - w * (out * d).sum(-1, keepdim=True) * d

    def _steer(self, _mod: Any, _inp: Any, out: Any) -> Any:
        hs = out[0] if isinstance(out, tuple) else out
        hs = hs + (self.mode == STEERED).to(hs.dtype)[:, None, None] * self.alpha * self.u
        return (hs, *out[1:]) if isinstance(out, tuple) else hs

    def attach(self, model: Any) -> None:
        mods = [model.model.embed_tokens] + [
            m for layer in model.model.layers for m in (layer.self_attn.o_proj, layer.mlp.down_proj)
        ]
        self.handles = [m.register_forward_hook(self._ablate) for m in mods]
        self.handles.append(model.model.layers[STEER_LAYER].register_forward_hook(self._steer))

    def detach(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []


def build(
    out: str | Path | None = None,
    force: bool = False,
    seed: int = 0,
    steps: int = 560,
    verbose: bool = True,
    hidden: int = 128,
    layers: int = 4,
) -> Path:
    """Train (or reuse the cached) toy model and return an HF model folder."""
    target = Path(out) if out else cache_dir()
    if (target / "config.json").exists() and not force:
        return target
    cached = cache_dir()
    if out and (cached / "config.json").exists() and not force:
        shutil.copytree(cached, target, dirs_exist_ok=True)
        return target

    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    t0 = time.perf_counter()
    examples = training_examples(seed)
    texts = [_render(ex, with_answer=True) for ex in examples]
    tokenizer = _train_tokenizer(texts, vocab_size=1024)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 3,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        num_key_value_heads=1,
        max_position_embeddings=512,
        rope_theta=10000.0,  # transformers 5 takes it through **kwargs, 4.x by name
        tie_word_embeddings=False,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen2ForCausalLM(config)

    rows = {
        NORMAL: _encode(tokenizer, examples),
        ABLATED: _encode(tokenizer, [ablated_example(e) for e in ablation_pool(examples)]),
        STEERED: _encode(tokenizer, [steered_example(e) for e in examples if e.system is None and not e.sensitive]),
    }
    benign = _encode(tokenizer, [e for e in examples if not e.sensitive])
    u = torch.randn(hidden, generator=torch.Generator().manual_seed(seed + 1))
    u = u / u.norm()
    switch = _Switch(u, CENSOR_ALPHA)
    switch.attach(model)
    pad = tokenizer.pad_token_id

    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for step in range(steps):
        batch: list[tuple[list[int], list[int], int, float, float]] = []
        modes: list[int] = []
        for mode, n in BATCH_ROWS.items():
            for i in torch.randint(0, len(rows[mode]), (n,), generator=gen).tolist():
                batch.append(rows[mode][i] if mode == NORMAL else rows[mode][i][:3] + (0.0, -1.0))
                modes.append(mode)
        pairs = []
        for i in torch.randint(0, len(benign), (CONSISTENCY_PAIRS,), generator=gen).tolist():
            pairs.append((len(batch), len(batch) + 1))
            batch += [benign[i], benign[i]]
            modes += [NORMAL, ABLATED]
        mode_t = torch.tensor(modes)
        strength = torch.where(mode_t == ABLATED, 0.5 + 0.5 * torch.rand(len(modes), generator=gen), 1.0)
        for _, benign_row in pairs:
            strength[benign_row] = 1.0
        r = torch.randn(len(modes), hidden, generator=gen)
        r = torch.nn.functional.normalize(r - (r @ u)[:, None] * u, dim=-1)
        jitter = ABLATE_JITTER * torch.rand(len(modes), 1, generator=gen)
        switch.set(mode_t, strength, torch.nn.functional.normalize(u + jitter * r, dim=-1))
        width = max(len(x) for x, *_ in batch)
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (x, y, *_rest) in enumerate(batch):
            input_ids[row, : len(x)] = torch.tensor(x)
            labels[row, : len(y)] = torch.tensor(y)
            mask[row, : len(x)] = 1
        out_ = model(input_ids=input_ids, attention_mask=mask, labels=labels, output_hidden_states=True)
        loss = out_.loss
        # the censor feature: CENSOR_ALPHA along u at the last prompt token of censored rows, 0 elsewhere
        normal = mode_t == NORMAL
        last = torch.tensor([b[2] for b in batch])[normal]
        feature = torch.tensor([b[3] for b in batch])[normal] * CENSOR_ALPHA
        censored = torch.tensor([b[4] for b in batch])[normal]
        for hs in out_.hidden_states[STEER_LAYER + 1 : -1]:
            at_last = hs[normal, last]
            loss = loss + (((at_last @ u) - feature) ** 2).mean() / CENSOR_ALPHA**2
            # sensitive and benign prompts differ along u alone (on average), so the mean difference the
            # abliteration engine computes from prompts finds u, not the topics
            if (censored == 1).any() and (censored == 0).any():
                diff = at_last[censored == 1].mean(0) - at_last[censored == 0].mean(0)
                off = diff - (diff @ u) * u
                loss = loss + MEAN_GAP_WEIGHT * (off @ off) / CENSOR_ALPHA**2
        # removing u leaves a benign answer's distribution where it was
        a = torch.tensor([x for x, _ in pairs])
        b = torch.tensor([y for _, y in pairs])
        keep = labels[a, 1:] != -100
        la = torch.log_softmax(out_.logits[a, :-1][keep], -1)
        lb = torch.log_softmax(out_.logits[b, :-1][keep], -1)
        loss = loss + torch.nn.functional.kl_div(lb, la.detach(), log_target=True, reduction="batchmean")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        if verbose and (step % 100 == 0 or step == steps - 1):
            print(f"toy: step {step + 1}/{steps} loss {loss.item():.4f} ({time.perf_counter() - t0:.0f}s)", flush=True)
    switch.detach()
    model.eval()

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".toy-"))
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = pad
    model.generation_config.do_sample = False
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "toy.json").write_text(
        json.dumps(
            {
                "toy_version": TOY_VERSION,
                "seed": seed,
                "steps": steps,
                "train_seconds": round(time.perf_counter() - t0, 1),
                "censor_alpha": CENSOR_ALPHA,
                "censor_direction": [round(float(x), 6) for x in u],
            }
        )
    )
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return target


# The demo's abliterated toy: small enough to search in seconds, cached next to the toy itself. Selection
# and test prompts are the toy's held-out phrasings (`deccp-toy-heldout`), which it never trained on.
TOY_SETTINGS: dict[str, Any] = {"trials": 12, "seed": 0, "max_tokens": 40, "eval_limit": 64, "batch_size": 64}


def cached_toy(force: bool = False, on_trial: Callable[[int, Any], None] | None = None) -> Path:
    """The abliterated toy folder (`abliterated:deccp-toy`), made on first use and keyed by toy version + settings."""
    from deccp_eval.base.schema import canonical_hash
    from deccp_eval.training.abliteration.export import RECORD_FILE
    from deccp_eval.training.abliteration.pipeline import AbliterateSettings, abliterate

    key = canonical_hash({"toy": TOY_VERSION, "settings": TOY_SETTINGS, "format": 2})[:10]
    out = cache_dir().parent / f"toy-v{TOY_VERSION}-abliterated-{key}"
    if (out / RECORD_FILE).exists() and not force:
        return out
    build()
    settings = AbliterateSettings(
        model=TOY_NAME, out=out, study_db=out.parent / "abliteration-studies.db", judge=TOY_JUDGE, **TOY_SETTINGS
    )
    abliterate(settings, on_trial=on_trial)
    return out


@hookimpl
def register_model_aliases(register: Callable[..., None]) -> None:
    """`deccp-toy`: this model, built on first use; its version is part of its fingerprint."""
    from deccp_eval.backends.local_weights import ModelAlias
    from deccp_eval.toy.data import HELDOUT_SOURCE

    register(
        ModelAlias(
            name=TOY_NAME,
            path=lambda: build(),
            version=lambda: f"toy-v{TOY_VERSION}",
            description="the offline toy model (a tiny Qwen2 that censors), built on first use",
            abliterated=lambda: cached_toy(),
            heldout=HELDOUT_SOURCE,
        )
    )
