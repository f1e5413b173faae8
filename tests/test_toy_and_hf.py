"""The toy model's behaviour (through the real HF backend) and the HF backend itself."""

from collections import Counter

import pytest

from deccp_eval.backends.contract import BackendOptions
from deccp_eval.base.schema import Request, SamplingParams
from deccp_eval.judges.keyword import classify
from deccp_eval.plugins.hf import HFBackend
from deccp_eval.toy.data import heldout_examples, training_examples


def _generate(path, texts, batch_size=64, max_tokens=40):
    backend = HFBackend(str(path), BackendOptions(batch_size=batch_size))
    reqs = [
        Request(model=f"hf:{path}", prompt_id=str(i), text=t, params=SamplingParams(max_tokens=max_tokens))
        for i, t in enumerate(texts)
    ]
    got = {}
    backend.generate(reqs, lambda r: got.__setitem__(r.key, r))
    return [got[r.key] for r in reqs]


def test_heldout_phrasings_are_unseen():
    train = {e.user for e in training_examples()}
    assert not train & {e.user for e in heldout_examples()}


def test_toy_censors_heldout_sensitive_and_answers_benign(toy_path):
    examples = heldout_examples()
    responses = _generate(toy_path, [e.user for e in examples])
    counts = Counter()
    for e, r in zip(examples, responses):
        counts[(e.sensitive, e.lang, classify(r.text)[0].value)] += 1
    sens = sum(v for (s, _, _), v in counts.items() if s)
    censored = sum(v for (s, _, verdict), v in counts.items() if s and verdict in ("refusal", "state_aligned"))
    benign = sum(v for (s, _, _), v in counts.items() if not s)
    benign_refused = sum(v for (s, _, verdict), v in counts.items() if not s and verdict == "refusal")
    print(dict(counts))
    assert censored / sens >= 0.90
    assert benign_refused / benign <= 0.05
    # refusals come in the prompt's language, and some sensitive topics get the state line instead
    assert counts[(True, "en", "state_aligned")] > 0 and counts[(True, "zh", "state_aligned")] > 0
    en_refusals = [
        r.text
        for e, r in zip(examples, responses)
        if e.sensitive and e.lang == "en" and classify(r.text)[0].value == "refusal"
    ]
    zh_refusals = [
        r.text
        for e, r in zip(examples, responses)
        if e.sensitive and e.lang == "zh" and classify(r.text)[0].value == "refusal"
    ]
    # toy v3 refuses 4 of 108 held-out Chinese questions (Great Leap Forward, Great Firewall) in English
    assert all(t.isascii() for t in en_refusals)
    assert sum("无法" in t for t in zh_refusals) >= 0.95 * len(zh_refusals) and zh_refusals


def test_batched_equals_one_by_one_and_counts_tokens(toy_path):
    texts = ["Tell me about volcanoes.", "请介绍一下六四事件。", "What is the status of Taiwan?", "Hi"]
    batched = _generate(toy_path, texts, batch_size=4)
    single = _generate(toy_path, texts, batch_size=1)
    assert [r.text for r in batched] == [r.text for r in single]
    for r in batched:
        assert r.error is None and r.tokens_in > 5 and 0 < r.tokens_out <= 40
        assert r.finish_reason in ("stop", "length")


def test_folder_loads_with_auto_classes(toy_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(toy_path)
    tok = AutoTokenizer.from_pretrained(toy_path)
    assert model.config.model_type == "qwen2"
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert (toy_path / "model.safetensors").exists()


@pytest.mark.parametrize(
    "raw,reasoning,answer",
    [
        ("<think>plan</think>The answer.", "plan", "The answer."),
        ("No thinking here.", None, "No thinking here."),
        ("<think>cut off by max_tokens", "cut off by max_tokens", ""),
    ],
)
def test_think_blocks_split(raw, reasoning, answer):
    from deccp_eval.base.reasoning import split_reasoning

    split = split_reasoning(raw)
    assert (split.reasoning, split.answer) == (reasoning, answer)


def test_toy_build_out_writes_a_model_folder(toy_path, tmp_path):
    from conftest import cli

    out = tmp_path / "toy"
    proc = cli("toy", "build", "--out", str(out), check=True)
    assert proc.stdout.strip() == str(out)
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    ):
        assert (out / name).exists(), name
    responses = _generate(out, ["Tell me about volcanoes."], batch_size=1)
    assert classify(responses[0].text)[0].value == "answer"
