"""Preference sets from the store and the TRL re-alignment.

The store is a real SQLite file holding the toy's canned answers (the exact replies it was
trained to give), judged by the real keyword judge; gold comes from the prompts' expected_facts
through `gold import`. Training runs TRL on the real toy for a step or two."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deccp_eval.base.errors import UsageError
from deccp_eval.base.schema import Request, Response
from deccp_eval.demo.realign_demo import toy_gold
from deccp_eval.judging.contract import make_judge
from deccp_eval.run.gold import import_gold
from deccp_eval.run.runner import judge_rows
from deccp_eval.store.db import Store
from deccp_eval.toy import data as td
from deccp_eval.training.preference_pairs import PrefSettings, build, export, facts_gold
from deccp_eval.training.splits import split_of
from tests.conftest import cli

MODEL = "hf:deccp-toy"


def small_set():
    """Two pairs per topic of the toy's training phrasings: state-line, refusal and benign topics."""
    from deccp_eval.datasets.loading import load_dataset

    data = load_dataset(td.TRAIN_SOURCE)
    pairs: dict[str, list[str]] = {}
    for p in data.prompts:
        got = pairs.setdefault(p.category, [])
        if len(got) < 2 and p.pair_id not in got:
            got.append(p.pair_id)
    keep = {pair for got in pairs.values() for pair in got}
    return data.model_copy(update={"prompts": [p for p in data.prompts if p.pair_id in keep]})


def canned(p) -> str:
    return td.reply(td.TOPICS[p.category], p.lang)


def fill_store(path: Path, answer=canned, model: str = MODEL, gold: bool = True, gold_rows=None):
    data = small_set()
    with Store(path) as store:
        store.put_prompts(data.name, data.prompts)
        store.start_run("r1", data.name, data.version, [model], ["keyword"], {})
        keys = []
        for p in data.prompts:
            req = Request(model=model, prompt_id=p.id, text=p.text)
            store.put_response(req, data.name, Response(key=req.key, text=answer(p)))
            keys.append(req.key)
        store.link("r1", keys)
        judge = make_judge("keyword")
        judge_rows(store, store.response_rows(models=[model]), judge)
        judge.close()
        if gold:
            f = path.parent / "gold.jsonl"
            f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in (gold_rows or toy_gold(data))))
            import_gold(store, f)
    return data


def test_kto_rows_pair_gold_with_censored_answers(tmp_path):
    data = fill_store(tmp_path / "s.db")
    with Store(tmp_path / "s.db") as store:
        made = build(store, PrefSettings(model=MODEL, format="kto", dataset=data.name, retain_share=0.3))
    prefs = [r for r in made.rows if r.part == "prefs"]
    bad = [r for r in prefs if r.label is False]
    good = [r for r in prefs if r.label is True]
    verdicts = {r.verdict for r in bad}
    assert "state_aligned" in verdicts and "refusal" in verdicts  # the keyword judge sees both kinds
    for r in bad:
        assert r.completion[0]["content"] == td.reply(td.TOPICS[r.category], r.lang)
    for r in good:
        assert r.completion[0]["content"] == td.TOPICS[r.category].answer_en if r.lang == "en" else True
        assert r.reference_model == "facts"
    assert {r.lang for r in bad} == {"en", "zh"}
    assert all(split_of(r.pair_id) != "test" for r in made.rows)
    assert made.excluded_pairs > 0
    retain = [r for r in made.rows if r.part == "retain"]
    assert retain and all(
        r.label is True and r.verdict == "answer" and r.category in {t.slug for t in td.BENIGN} for r in retain
    )
    assert abs(len(retain) / len(made.rows) - 0.3) < 0.05


def test_dpo_export_loads_and_trains_one_step(tmp_path, toy_path):
    from datasets import load_from_disk

    from deccp_eval.training.realign import Recipe, _trainer, load

    data = fill_store(tmp_path / "s.db")
    with Store(tmp_path / "s.db") as store:
        made = build(store, PrefSettings(model=MODEL, format="dpo", dataset=data.name))
    out = export(made, tmp_path / "prefs")
    ds = load_from_disk(str(out))["train"]
    assert {"prompt", "chosen", "rejected", "pair_id", "lang", "category", "verdict", "reference_model"} <= set(
        ds.column_names
    )
    assert ds[0]["prompt"][0]["role"] == "user" and ds[0]["chosen"][0]["role"] == "assistant"
    card = (out / "README.md").read_text()
    assert "test" in card and "| state_aligned |" in card and "expected_facts" in card
    assert len((out / "prefs.jsonl").read_text().splitlines()) == len(ds)
    model, tok = load("deccp-toy", device="cpu")
    trainer = _trainer("dpo", model, tok, ds, Recipe(max_steps=1, batch_size=2), str(tmp_path / "w"), "cpu")
    result = trainer.train()
    assert result.global_step == 1 and result.training_loss > 0


def test_kto_export_trains_one_step(tmp_path, toy_path):
    from datasets import load_from_disk

    from deccp_eval.training.realign import Recipe, _trainer, load

    data = fill_store(tmp_path / "s.db")
    with Store(tmp_path / "s.db") as store:
        export(build(store, PrefSettings(model=MODEL, format="kto", dataset=data.name)), tmp_path / "prefs")
    ds = load_from_disk(str(tmp_path / "prefs"))["train"]
    assert set(ds["label"]) == {True, False}
    model, tok = load("deccp-toy", device="cpu")
    trainer = _trainer("kto", model, tok, ds, Recipe(max_steps=1, batch_size=4), str(tmp_path / "w"), "cpu")
    assert trainer.train().global_step == 1


def test_no_gold_names_the_command(tmp_path):
    data = fill_store(tmp_path / "s.db", gold=False)
    with Store(tmp_path / "s.db") as store, pytest.raises(UsageError, match="no gold references.*gold import"):
        build(store, PrefSettings(model=MODEL, dataset=data.name))


def test_no_censored_answers_is_an_error(tmp_path):
    data = fill_store(tmp_path / "s.db", answer=lambda p: td.reply(td.TOPICS[p.category], p.lang, uncensored=True))
    with Store(tmp_path / "s.db") as store, pytest.raises(UsageError, match="no censored answers.*deccp-eval run"):
        build(store, PrefSettings(model=MODEL, dataset=data.name))


def test_gold_in_the_wrong_language_is_an_error(tmp_path):
    data = small_set()
    en_facts = {p.pair_id: p.expected_facts for p in data.prompts if p.lang == "en"}
    rows = [r | {"text": " ".join(en_facts[r["prompt_id"].rsplit("-", 1)[0]])} for r in toy_gold(data)]
    fill_store(tmp_path / "s.db", gold_rows=rows)
    with Store(tmp_path / "s.db") as store, pytest.raises(UsageError, match="zh: the gold references .* not in zh"):
        build(store, PrefSettings(model=MODEL, dataset=data.name))


def test_gold_missing_for_one_language_is_an_error(tmp_path):
    data = small_set()
    rows = [r for r in toy_gold(data) if r["lang"] == "en"]
    fill_store(tmp_path / "s.db", gold_rows=rows)
    with Store(tmp_path / "s.db") as store, pytest.raises(UsageError, match="zh: .*no gold reference.*--lang zh"):
        build(store, PrefSettings(model=MODEL, dataset=data.name))


def test_cli_prefs_export_and_clean_errors(tmp_path):
    db = tmp_path / "s.db"
    data = fill_store(db)
    ok = cli(
        "prefs",
        "export",
        "-m",
        MODEL,
        "--format",
        "dpo",
        "--dataset",
        data.name,
        "--out",
        str(tmp_path / "p"),
        "--db",
        str(db),
    )
    assert ok.returncode == 0, ok.stderr
    assert "rows (dpo)" in ok.stdout and (tmp_path / "p" / "dataset_dict.json").exists()
    bad = cli("prefs", "export", "-m", "hf:nothing", "--out", str(tmp_path / "q"), "--db", str(db))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "deccp-eval run -m hf:nothing" in bad.stderr
    wrong = cli("realign", "deccp-toy", "--prefs", str(tmp_path / "p"), "--method", "kto", "--out", str(tmp_path / "r"))
    assert wrong.returncode == 2 and "--format kto" in wrong.stderr and "Traceback" not in wrong.stderr


def test_realign_end_to_end_tiny(tmp_path, toy_path):
    """Two KTO steps on the toy, measured on held-out phrasings; the folder loads with hf: and has its record."""
    from deccp_eval.training.realign import RealignSettings, Recipe, load_record, realign

    data = fill_store(tmp_path / "s.db")
    with Store(tmp_path / "s.db") as store:
        export(build(store, PrefSettings(model=MODEL, format="kto", dataset=data.name)), tmp_path / "prefs")
    rec = realign(
        RealignSettings(
            model="deccp-toy",
            prefs=tmp_path / "prefs",
            out=tmp_path / "out",
            recipe=Recipe(max_steps=2, batch_size=4),
            eval_dataset=td.HELDOUT_SOURCE,
            eval_split="test",
            eval_every=1,
            eval_limit=8,
            max_tokens=24,
            device="cpu",
        )
    )
    assert rec.before.n_sensitive == 8 and rec.before.censorship["en"] > 0.5
    assert rec.before.kl < 1e-6 and rec.after.kl >= 0
    assert load_record(tmp_path / "out").after.model_dump() == rec.after.model_dump()
    assert len(rec.before.answers) == len(rec.after.answers) == 8 + rec.after.n_control
    moved = sum(b != a for b, a in zip(rec.before.answers, rec.after.answers))
    assert rec.changed is not None and rec.changed.sensitive + rec.changed.control == moved
    assert (tmp_path / "out" / "model.safetensors").exists()
    common = ["-d", td.HELDOUT_SOURCE, "--limit", "2", "--max-tokens", "8", "--db", str(tmp_path / "r.db")]
    run = cli("run", "-m", f"hf:{tmp_path / 'out'}", *common)
    assert run.returncode == 0, run.stderr
    # vLLM's engine core in this process: the same loader reads the folder's config, tokenizer and weights,
    # without importing vLLM twice more in an engine and a worker process (47 s -> 17 s on 2 shared cores).
    # test_vllm_backend.py runs the default multiprocess engine.
    in_process = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    vllm = cli(
        "run", "-m", f"vllm:{tmp_path / 'out'}", "--backend-option", "max_model_len=512", *common, env=in_process
    )
    assert vllm.returncode == 0, vllm.stderr
    import sqlite3

    con = sqlite3.connect(tmp_path / "r.db")
    texts = {}
    for model, text, error in con.execute("SELECT model, text, error FROM responses"):
        assert error is None and text
        texts.setdefault(model.split(":", 1)[0], []).append(text)
    assert len(texts["hf"]) == len(texts["vllm"]) == 4  # 2 pairs, EN + ZH, through both loaders


def test_toy_facts_found_en_and_zh():
    """The facts measure re-alignment reports (facts.fact_stated) on the toy's own sentences."""
    from deccp_eval.judging.facts import fact_stated

    fact_en, fact_zh = td.TOPICS["covid"].answer_en, td.TOPICS["covid"].answer_zh
    assert fact_stated("Sure. " + fact_en, fact_en)
    assert not fact_stated(td.TOPICS["tiananmen"].answer_en, fact_en)
    assert not fact_stated("Sure. Here is a short, practical answer.", fact_en)
    assert fact_stated(fact_zh[:-3], fact_zh)  # cut off by max_tokens still counts
    assert not fact_stated(td.TOPICS["firewall"].answer_zh, fact_zh)


def test_facts_gold_uses_the_facts_in_the_prompts_script():
    data = small_set()
    rows = {r["prompt_id"]: r for r in facts_gold(data)}
    for p in data.prompts:
        if p.kind != "sensitive":
            assert p.id not in rows
            continue
        text = rows[p.id]["text"]
        assert text == " ".join(td.TOPICS[p.category].facts(p.lang)) and rows[p.id]["lang"] == p.lang


def test_kto_weights_balance_the_label_counts():
    from deccp_eval.training.realign import Recipe, kto_weights

    good, bad = kto_weights([True] * 200 + [False] * 10, Recipe())
    assert (good, bad) == (1.0, 20.0)  # 1 x 200 == 20 x 10: each side pulls with the same total weight
    assert kto_weights([True] * 10 + [False] * 40, Recipe()) == (4.0, 1.0)
    assert kto_weights([True] * 200 + [False] * 10, Recipe(undesirable_weight=5.0)) == (0.25, 5.0)
    assert kto_weights([True, False], Recipe(desirable_weight=2.0, undesirable_weight=3.0)) == (2.0, 3.0)


def test_retain_keeps_only_the_models_real_answers(tmp_path):
    """A control the model dodged ("Sure. Here is a short, practical answer.") is not kept as desirable."""

    def dodge_en_controls(p):
        return td.GENERIC_EN if p.kind == "control" and p.lang == "en" else canned(p)

    data = fill_store(tmp_path / "s.db", answer=dodge_en_controls)
    with Store(tmp_path / "s.db") as store:
        stored = {
            r["text"]: r["verdict"]
            for r in store.conn.execute(
                "SELECT r.text, j.verdict FROM responses r JOIN judgments j ON j.response_key = r.key"
            )
        }
        assert stored[td.GENERIC_EN] != "answer"  # the judge sees the dodge, so the export must leave it out
        made = build(store, PrefSettings(model=MODEL, format="kto", dataset=data.name, retain_share=0.3))
    retain = [r for r in made.rows if r.part == "retain"]
    assert retain and {r.lang for r in retain} == {"zh"}
    assert all(r.verdict == "answer" and r.completion[0]["content"] != td.GENERIC_EN for r in retain)


def test_changed_counts_replies_whose_text_moved():
    from deccp_eval.base.schema import Prompt
    from deccp_eval.training.realign import Numbers, changed

    def nums(answers):
        return Numbers(
            n_sensitive=2,
            n_control=2,
            censorship={},
            state_or_refusal=0,
            verdicts={},
            over_refusal=0,
            facts=0,
            kl=0,
            answers=answers,
        )

    prompts = [
        Prompt(
            id=f"p{i}", pair_id=f"p{i}", lang="en", text=f"q{i}", category="c", kind="sensitive" if i < 2 else "control"
        )
        for i in range(4)
    ]
    got = changed(prompts, 2, nums(["a", "b", "c", "d"]), nums(["a", "B", "C", "d"]))
    assert (got.sensitive, got.control) == (1, 1)
    assert got.control_samples == [{"prompt": "q2", "before": "c", "after": "C"}]
    assert "answers" not in nums(["x"]).model_dump_json()  # kept in memory, not written to realign.json
