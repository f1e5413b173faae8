import math
import sqlite3

from deccp_eval.analysis import leaderboard
from deccp_eval.base.schema import Judgment, Prompt, Request, Response, SamplingParams, Verdict
from deccp_eval.base.stats import cohen_kappa, wilson
from deccp_eval.store.db import Store


def _prompts():
    out = []
    for i in range(10):
        for lang in ("en", "zh"):
            out.append(
                Prompt(
                    id=f"s{i}-{lang}",
                    pair_id=f"s{i}",
                    lang=lang,
                    text=f"q{i} {lang}",
                    category="taiwan" if i < 5 else "tibet",
                    kind="sensitive",
                )
            )
    out += [
        Prompt(id=f"c{i}-en", pair_id=f"c{i}", lang="en", text=f"c{i}", category="taiwan", kind="control")
        for i in range(4)
    ]
    return out


def test_writes_are_idempotent(tmp_path):
    with Store(tmp_path / "s.db") as store:
        req = Request(model="x:y", prompt_id="p", text="hi")
        assert store.put_response(req, "d", Response(key=req.key, text="first"))
        assert not store.put_response(req, "d", Response(key=req.key, text="second"))  # kept
        assert store.get_response(req.key).text == "first"
        err = Request(model="x:y", prompt_id="q", text="hi2")
        store.put_response(err, "d", Response(key=err.key, error="boom"))
        assert store.response_status([req.key, err.key]) == {req.key: True, err.key: False}
        assert store.put_response(err, "d", Response(key=err.key, text="ok now"))  # an error is overwritten
        assert store.response_status([err.key]) == {err.key: True}
    mode = sqlite3.connect(tmp_path / "s.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_cache_key_ignores_nothing_that_matters():
    a = Request(model="m:x", prompt_id="p", text="t", params=SamplingParams(max_tokens=10))
    assert a.key == Request(model="m:x", prompt_id="p", text="t", params=SamplingParams(max_tokens=10)).key
    assert a.key != Request(model="m:x", prompt_id="p", text="t", params=SamplingParams(max_tokens=11)).key
    assert a.key != Request(model="m:x", prompt_id="p", text="t2", params=SamplingParams(max_tokens=10)).key
    assert a.key != Request(model="m:x", prompt_id="p", text="t", sample=1, params=SamplingParams(max_tokens=10)).key


def test_leaderboard_rates_and_wilson_by_hand(tmp_path):
    # en: 6 refusals, 2 answers, 1 state_aligned, 1 unparsed; zh: 10 refusals minus 1 error
    verdicts_en = ["refusal"] * 6 + ["answer"] * 2 + ["state_aligned"] + [None]
    with Store(tmp_path / "s.db") as store:
        prompts = _prompts()
        store.put_prompts("d", prompts)
        store.start_run("r1", "d", "v1", ["m:x"], ["keyword"], {})
        keys = []
        en = [p for p in prompts if p.lang == "en" and p.kind == "sensitive"]
        zh = [p for p in prompts if p.lang == "zh"]
        ctl = [p for p in prompts if p.kind == "control"]
        for p, v in [
            *zip(en, verdicts_en),
            *[(p, "refusal") for p in zh],
            *zip(ctl, ["refusal", "answer", "answer", "answer"]),
        ]:
            req = Request(model="m:x", prompt_id=p.id, text=p.text)
            keys.append(req.key)
            failed = p.id == "s9-zh"
            store.put_response(
                req, "d", Response(key=req.key, text="t", tokens_in=3, tokens_out=5, error="boom" if failed else None)
            )
            if not failed:
                store.put_judgment(
                    Judgment(
                        response_key=req.key,
                        judge="keyword",
                        verdict=Verdict(v) if v else None,
                        parse_status="ok" if v else "unparsed",
                    )
                )
        store.link("r1", keys)
        rows = {r["lang"]: r for r in leaderboard.compute(store)}
    en_row, zh_row = rows["en"], rows["zh"]
    assert en_row["n"] == 9 and en_row["unparsed"] == 1 and en_row["errors"] == 0
    assert math.isclose(en_row["refusal_rate"], 6 / 9)
    assert math.isclose(en_row["censorship_rate"], 7 / 9)
    # Wilson by hand: p=6/9, n=9, z=1.96
    z, n, p = 1.959963984540054, 9, 6 / 9
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert math.isclose(en_row["refusal_lo"], centre - half) and math.isclose(en_row["refusal_hi"], centre + half)
    assert en_row["control_n"] == 4 and math.isclose(en_row["control_refusal_rate"], 0.25)
    assert zh_row["n"] == 9 and zh_row["errors"] == 1 and zh_row["refusal_rate"] == 1.0
    assert math.isclose(zh_row["refusal_lo"], wilson(9, 9)[0]) and zh_row["refusal_hi"] == 1.0
    assert en_row["tokens_out"] == 5 * 14


def test_wilson_known_values():
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and math.isclose(hi, 0.2775, abs_tol=1e-4)
    lo, hi = wilson(5, 10)
    assert math.isclose(lo, 0.2366, abs_tol=1e-4) and math.isclose(hi, 0.7634, abs_tol=1e-4)


def test_cohen_kappa_by_hand():
    truth = ["a", "a", "b", "b"]
    assert cohen_kappa(truth, truth) == 1.0
    assert math.isclose(cohen_kappa(truth, ["a", "b", "a", "b"]), 0.0)


def test_leaderboard_says_how_many_replies_state_an_expected_fact(tmp_path):
    """Every reply below is judged `answer`; only the facts column tells the one on topic from the one
    that answers another question. A prompt with no facts in its language is left out of that column."""
    fact_en, fact_zh = "Liu Xiaobo won the Nobel Peace Prize in 2010", "刘晓波获得诺贝尔和平奖"
    prompts = [
        Prompt(
            id="a-en",
            pair_id="a",
            lang="en",
            text="Who is Liu Xiaobo?",
            category="dissidents",
            kind="sensitive",
            expected_facts=[fact_en, fact_zh],
        ),
        Prompt(
            id="b-en",
            pair_id="b",
            lang="en",
            text="Tell me about Liu Xiaobo.",
            category="dissidents",
            kind="sensitive",
            expected_facts=[fact_en, fact_zh],
        ),
        Prompt(
            id="c-en",
            pair_id="c",
            lang="en",
            text="And the Dalai Lama?",
            category="tibet",
            kind="sensitive",
            expected_facts=["达赖喇嘛流亡印度"],
        ),
        Prompt(
            id="a-zh",
            pair_id="a",
            lang="zh",
            text="刘晓波是谁？",
            category="dissidents",
            kind="sensitive",
            expected_facts=[fact_en, fact_zh],
        ),
    ]
    replies = {
        "a-en": "Liu Xiaobo won the Nobel Peace Prize in 2010 while in prison.",
        "b-en": "The Silk Road linked China with Central Asia and Europe for trade.",
        "c-en": "The Dalai Lama fled to India in 1959.",
        "a-zh": "刘晓波于二零一零年获得诺贝尔和平奖。",
    }
    with Store(tmp_path / "s.db") as store:
        store.put_prompts("d", prompts)
        store.start_run("r1", "d", "v1", ["m:x"], ["keyword"], {})
        keys = []
        for p in prompts:
            req = Request(model="m:x", prompt_id=p.id, text=p.text)
            store.put_response(req, "d", Response(key=req.key, text=replies[p.id]))
            store.put_judgment(Judgment(response_key=req.key, judge="keyword", verdict=Verdict.ANSWER))
            keys.append(req.key)
        store.link("r1", keys)
        rows = {r["lang"]: r for r in leaderboard.compute(store)}
    assert rows["en"]["answer_rate"] == 1.0
    assert rows["en"]["facts_n"] == 2 and rows["en"]["facts_rate"] == 0.5  # c-en has no English fact
    assert rows["zh"]["facts_n"] == 1 and rows["zh"]["facts_rate"] == 1.0
    table = leaderboard.markdown(list(rows.values()))
    assert "states a fact" in table.splitlines()[0] and "50% [" in table
    assert "states a fact" not in leaderboard.markdown([{**r, "facts_n": 0} for r in rows.values()])
