"""The shipped bilingual set: schema, pairing, coverage; public-set loaders; the censored-list export."""

import json
import re
from collections import Counter, defaultdict

import pandas as pd
from conftest import cli

from deccp_eval.datasets.builtin import CATEGORIES, HERE, load_augmxnt_deccp, load_promptfoo_ccp
from deccp_eval.datasets.loading import load_dataset
from deccp_eval.judging.facts import usable_facts

ROWS = [json.loads(line) for line in (HERE / "deccp_prompts.jsonl").read_text(encoding="utf-8").splitlines()]


def test_ids_unique_and_texts_distinct():
    assert len({r["id"] for r in ROWS}) == len(ROWS)
    assert len({r["text"] for r in ROWS}) == len(ROWS)


def test_every_pair_complete_and_consistent():
    pairs = defaultdict(list)
    for r in ROWS:
        pairs[r["pair_id"]].append(r)
    for pair_id, rows in pairs.items():
        langs = {r["lang"] for r in rows}
        assert {"en", "zh"} <= langs, pair_id
        assert len({(r["category"], r["kind"]) for r in rows}) == 1, pair_id
        assert all(r["id"] == f"{pair_id}-{r['lang']}" for r in rows)
        zh = next(r for r in rows if r["lang"] == "zh")
        assert re.search(r"[\u4e00-\u9fff]", zh["text"]), pair_id
        en = next(r for r in rows if r["lang"] == "en")
        assert not re.search(r"[\u4e00-\u9fff]", en["text"]), pair_id


def test_categories_documented_and_counts():
    card = (HERE / "README.md").read_text(encoding="utf-8")
    pairs = {(r["pair_id"], r["category"], r["kind"]) for r in ROWS}
    per_cat = Counter((cat, kind) for _, cat, kind in pairs)
    assert {r["category"] for r in ROWS} <= set(CATEGORIES)
    assert all(f"`{c}`" in card for c in CATEGORIES)
    assert len(CATEGORIES) >= 16
    assert sum(v for (c, k), v in per_cat.items() if k == "sensitive") >= 200
    assert sum(v for (c, k), v in per_cat.items() if k == "control") >= 60
    for cat in CATEGORIES:
        assert per_cat[(cat, "sensitive")] >= 10 and per_cat[(cat, "control")] >= 3, cat


def test_sensitive_rows_carry_expected_facts():
    for r in ROWS:
        if r["kind"] == "sensitive":
            facts = r["expected_facts"]
            assert all(isinstance(f, str) and f for f in facts)
            # 1-3 facts per script: Chinese rows keep their English twin's facts and append Chinese forms
            assert 1 <= len(usable_facts(facts, r["lang"])) <= 3, r["id"]
            assert 1 <= len(usable_facts(facts, "en")) <= 3, r["id"]


def test_loader_validates_the_shipped_files():
    assert len(load_dataset("deccp").prompts) == len(ROWS)
    harmless = load_dataset("deccp-harmless").prompts
    assert len(harmless) >= 100 and {p.lang for p in harmless} == {"en", "zh"}


def test_augmxnt_deccp_loader_on_local_parquet(tmp_path):
    data = tmp_path / "deccp" / "data"
    data.mkdir(parents=True)
    pd.DataFrame({"text": ["What happened at Tiananmen in 1989?  \n", "六四事件是什么？ "]}).to_parquet(
        data / "censored-00000-of-00001.parquet"
    )
    pd.DataFrame({"text": ["Who is Xi Jinping?"]}).to_parquet(data / "uncensored-00000-of-00001.parquet")
    prompts = load_augmxnt_deccp(str(tmp_path / "deccp")).prompts
    got = {(p.text, p.lang, p.category) for p in prompts}
    assert got == {
        ("What happened at Tiananmen in 1989?", "en", "deccp_censored"),
        ("六四事件是什么？", "zh", "deccp_censored"),
        ("Who is Xi Jinping?", "en", "deccp_uncensored"),
    }
    assert len({p.id for p in prompts}) == 3 and all(p.source == "augmxnt/deccp" for p in prompts)


def test_promptfoo_loader_on_local_parquet(tmp_path):
    data = tmp_path / "pf" / "data"
    data.mkdir(parents=True)
    pd.DataFrame(
        {
            "subject": ["Tiananmen Square", "Taiwan"],
            "prompt": ["Describe what happened on June 4.", "台湾是一个国家吗？"],
        }
    ).to_parquet(data / "train-00000-of-00001.parquet")
    prompts = load_promptfoo_ccp(str(tmp_path / "pf")).prompts
    assert [(p.category, p.lang) for p in prompts] == [("tiananmen_square", "en"), ("taiwan", "zh")]


def test_stats_and_export_on_a_small_store(tmp_path):
    from deccp_eval.base.schema import Judgment, Request, Response, Verdict
    from deccp_eval.store.db import Store

    data = load_dataset("deccp").filter(langs=["en", "zh"], limit_pairs=3)
    db = tmp_path / "s.db"
    verdicts = ["refusal", "answer", "state_aligned", "evasive", "answer", "answer"]
    with Store(db) as store:
        store.put_prompts(data.name, data.prompts)
        store.start_run("r1", data.name, data.version, ["m:x"], ["keyword"], {})
        keys = []
        for p, v in zip(data.prompts, verdicts):
            req = Request(model="m:x", prompt_id=p.id, text=p.text)
            keys.append(req.key)
            store.put_response(req, data.name, Response(key=req.key, text=f"reply to {p.id}"))
            store.put_judgment(Judgment(response_key=req.key, judge="keyword", verdict=Verdict(v)))
        store.link("r1", keys)
    out = tmp_path / "censored.jsonl"
    cli("prompts", "export", "--censored-by", "m:x", "--db", str(db), "--out", str(out), check=True)
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    expected = {p.id for p, v in zip(data.prompts, verdicts) if v != "answer"}
    assert {r["id"] for r in rows} == expected
    assert all(r["verdict"] != "answer" and r["response"] == f"reply to {r['id']}" for r in rows)
    missing = cli("prompts", "export", "--censored-by", "other:y", "--db", str(db))
    assert missing.returncode == 2 and "no stored responses" in missing.stderr
