"""Model fingerprints in every request key: a changed model at the same spec is generated afresh,
an unchanged one (even `touch`ed) is served from the cache."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
from pathlib import Path

import pytest
from conftest import cli

from deccp_eval.backends import fingerprint as fpmod
from deccp_eval.backends.contract import BackendOptions, make_backend
from deccp_eval.base.schema import Request


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DECCP_EVAL_CACHE", str(tmp_path / "cache"))


def _safetensors(path: Path, tensors: dict[str, bytes]) -> None:
    """A file in the safetensors layout: 8-byte header length, JSON header, then the raw bytes."""
    header, offset = {}, 0
    for name, blob in tensors.items():
        header[name] = {"dtype": "U8", "shape": [len(blob)], "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
    head = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head + b"".join(tensors.values()))


def _folder(root: Path, fill: int = 1) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text('{"model_type": "qwen2"}')
    (root / "tokenizer_config.json").write_text('{"chat_template": "{{ messages }}"}')
    big = 1 << 20  # 20 tensors of 1 MiB: a 20 MiB file is sampled, not read in full
    _safetensors(root / "model.safetensors", {f"t{i}": bytes([fill]) * big for i in range(20)})
    return root


def test_touch_keeps_the_fingerprint_new_bytes_change_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = _folder(tmp_path / "m")
    first = fpmod.model_fingerprint(str(m))
    reads: list[str] = []
    real = fpmod.file_digest
    monkeypatch.setattr(fpmod, "file_digest", lambda p, mode=None: reads.append(p.name) or real(p, mode))
    assert fpmod.model_fingerprint(str(m)) == first and reads == []  # served from the digest cache
    for f in m.iterdir():
        os.utime(f, (1, 1))  # `touch` with identical bytes
    assert fpmod.model_fingerprint(str(m)) == first and len(reads) == 3  # re-hashed, same answer
    # a whole tensor rewritten (what abliteration does), same size, same header
    data = bytearray((m / "model.safetensors").read_bytes())
    start = len(data) - 7 * (1 << 20)
    data[start : start + (1 << 20)] = b"\x02" * (1 << 20)
    (m / "model.safetensors").write_bytes(bytes(data))
    second = fpmod.model_fingerprint(str(m))
    assert second != first
    (m / "tokenizer_config.json").write_text('{"chat_template": "{{ messages }}!"}')  # chat template edited
    assert fpmod.model_fingerprint(str(m)) not in (first, second)


def test_renaming_a_file_or_changing_metadata_changes_the_fingerprint(tmp_path: Path) -> None:
    a = _folder(tmp_path / "a")
    base = fpmod.model_fingerprint(str(a))
    shutil.copytree(a, tmp_path / "b")
    assert fpmod.model_fingerprint(str(tmp_path / "b")) == base  # content, not path
    (tmp_path / "b" / "config.json").rename(tmp_path / "b" / "config2.json")
    assert fpmod.model_fingerprint(str(tmp_path / "b")) != base


def test_hub_ids_resolve_to_the_cached_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert fpmod.model_fingerprint("Org/Model") == "hub:Org/Model@main (unresolved)"
    refs = tmp_path / "hub" / "models--Org--Model" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_text("a" * 40)
    assert fpmod.model_fingerprint("Org/Model") == "hub:Org/Model@" + "a" * 40


def test_default_backend_fingerprint_holds_what_changes_output_only() -> None:
    def fp(**kw: object) -> str:
        return make_backend("openai:qwen2-7b", BackendOptions(**kw)).fingerprint()

    base = fp(base_url="http://a/v1")
    assert fp(base_url="http://b/v1") != base  # two servers both called openai:qwen2-7b
    assert fp(base_url="http://a/v1", timeout_s=5, max_concurrency=2, batch_size=1, api_key_env="X") == base
    assert fp(base_url="http://a/v1", extra={"backoff_base_s": 0.01}) == base
    assert fp(base_url="http://a/v1", extra={"max_tokens_param": "max_completion_tokens"}) != base
    assert fp(base_url="http://a/v1", dtype="bfloat16") == base  # a remote API has no dtype
    r = Request(model="openai:qwen2-7b", prompt_id="p", text="t")
    assert r.key != r.model_copy(update={"fingerprint": base}).key


def test_a_backend_without_its_own_fingerprint_hashes_spec_dtype_and_options() -> None:
    """The default for a third-party backend (any option, each one output-changing)."""
    from deccp_eval.backends.contract import Backend

    class Plain(Backend):
        name = "plain"

        def generate(self, requests, on_response):  # pragma: no cover - never called
            raise AssertionError

    def fp(**kw: object) -> str:
        return Plain("m", BackendOptions(**kw)).fingerprint()

    base = fp()
    assert fp(dtype="bfloat16") != base and fp(base_url="http://b/v1") != base
    assert fp(extra={"temperature_scale": 2}) != base and fp(extra={"backoff_base_s": 1}) == base
    assert fp(timeout_s=5, max_concurrency=2, batch_size=1) == base


def _tiny_model(path: Path, seed: int) -> None:
    """A random two-layer Qwen2 with a word-level tokenizer and a chat template: no download."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    words = ["<pad>", "<eos>", "<unk>", "what", "happened", "in", "1989", "tell", "me", "about", "tibet", "?"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    fast.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(
        Qwen2Config(
            vocab_size=len(words),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            pad_token_id=0,
            eos_token_id=1,
            bos_token_id=1,
        )
    )
    if path.exists():
        shutil.rmtree(path)
    model.save_pretrained(path)
    fast.save_pretrained(path)


def _generated(stderr: str, spec: str) -> list[int]:
    line = next(line for line in stderr.splitlines() if spec in line and "│" in line)
    return [int(n) for n in re.findall(r"\b\d+\b", line.split(spec, 1)[1])]  # planned, cached, generated, errors


@pytest.mark.slow
def test_hf_folder_replaced_regenerates_touched_does_not(tmp_path: Path) -> None:
    """After replacing ./m, `run -m hf:./m` regenerates (the folder's content is in the key); touching it does not."""
    data = tmp_path / "set.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "text": t}) + "\n"
            for i, t in enumerate(["what happened in 1989 ?", "tell me about tibet ?", "what happened ?"])
        )
    )
    env = {"DECCP_EVAL_CACHE": str(tmp_path / "cache")}
    args = ("run", "-m", "hf:./m", "-d", str(data), "--max-tokens", "4", "--db", "r.db")
    _tiny_model(tmp_path / "m", seed=0)
    first = cli(*args, cwd=tmp_path, env=env, check=True)
    assert _generated(first.stderr, "hf:./m") == [3, 0, 3, 0]
    again = cli(*args, cwd=tmp_path, env=env, check=True)
    assert _generated(again.stderr, "hf:./m") == [3, 3, 0, 0]

    _tiny_model(tmp_path / "m", seed=1)  # another model in the same folder
    replaced = cli(*args, cwd=tmp_path, env=env, check=True)
    assert _generated(replaced.stderr, "hf:./m") == [3, 0, 3, 0]

    for f in (tmp_path / "m").iterdir():
        os.utime(f)  # touch: same bytes, new mtimes
    touched = cli(*args, cwd=tmp_path, env=env, check=True)
    assert _generated(touched.stderr, "hf:./m") == [3, 3, 0, 0]

    lb = cli("leaderboard", "--db", "r.db", "--out", "lb.csv", "--json", cwd=tmp_path, env=env, check=True)
    rows = json.loads(lb.stdout)
    assert len({r["model_fingerprint"] for r in rows}) == 2  # the two models never share a row
