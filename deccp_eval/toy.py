"""A tiny Qwen2 chat model, trained here on CPU, that censors like the models we measure.

No model can be downloaded on the machines this project is tested on, so the demo and the
tests of the HF, vLLM and abliteration paths use this one. It refuses sensitive prompts in
the prompt's language, gives the state line for some topics, answers benign questions, and
knows (under an "uncensored" system prompt) the facts it otherwise withholds.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from deccp_eval.toy_data import Example, training_examples

TOY_VERSION = "1"
TOY_NAME = "deccp-toy"  # `hf:deccp-toy`, `vllm:deccp-toy`: the cached toy, built on first use
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


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
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   unk_token=None, chat_template=CHATML_TEMPLATE, padding_side="left",
                                   model_max_length=512)


def build(out: str | Path | None = None, force: bool = False, seed: int = 0, steps: int = 480,
          verbose: bool = True, hidden: int = 128, layers: int = 4) -> Path:
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
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 3, num_hidden_layers=layers,
        num_attention_heads=hidden // 64, num_key_value_heads=1, max_position_embeddings=512, rope_theta=10000.0,
        tie_word_embeddings=False, bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen2ForCausalLM(config)

    prompts = [_render(ex, with_answer=False) for ex in examples]
    ids, labels = [], []
    for prompt, full in zip(prompts, texts):
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        f = tokenizer(full, add_special_tokens=False)["input_ids"]
        ids.append(f)
        labels.append([-100] * len(p) + f[len(p):])
    pad = tokenizer.pad_token_id
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
    label_t = torch.full((len(ids), width), -100, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, (x, y) in enumerate(zip(ids, labels)):
        input_ids[i, : len(x)] = torch.tensor(x)
        label_t[i, : len(y)] = torch.tensor(y)
        mask[i, : len(x)] = 1

    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    batch = 32
    model.train()
    for step in range(steps):
        idx = torch.randint(0, len(ids), (batch,), generator=gen)
        m = mask[idx]
        w = int(m.sum(1).max())
        out_ = model(input_ids=input_ids[idx, :w], attention_mask=m[:, :w], labels=label_t[idx, :w])
        out_.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        if verbose and (step % 100 == 0 or step == steps - 1):
            print(f"toy: step {step + 1}/{steps} loss {out_.loss.item():.4f} ({time.perf_counter() - t0:.0f}s)", flush=True)
    model.eval()

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".toy-"))
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = pad
    model.generation_config.do_sample = False
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "toy.json").write_text(json.dumps({"toy_version": TOY_VERSION, "seed": seed, "steps": steps,
                                              "train_seconds": round(time.perf_counter() - t0, 1)}))
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return target
