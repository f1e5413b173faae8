"""Leaderboard rows are per (model fingerprint, dataset, version, lang, judge) over every stored answer."""

from __future__ import annotations

import csv
from pathlib import Path

from conftest import cli
from fakes.openai_server import FakeOpenAIServer

from deccp_eval.analysis import leaderboard
from deccp_eval.base.schema import Judgment, Prompt, Request, Response, Verdict
from deccp_eval.store.db import Store

ENV = {"OPENAI_API_KEY": "sk-test-lb", "DECCP_EVAL_BACKOFF_BASE_S": "0.01"}


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_partial_run_after_full_run_keeps_every_answer(tmp_path: Path) -> None:
    """`run --limit 10` then `run --limit 2` reports n=10: the board counts every stored answer, not the last run's."""
    db = tmp_path / "results" / "deccp.db"
    out = tmp_path / "lb.csv"
    with FakeOpenAIServer() as srv:
        base = ("-m", "openai:fake-model", "--base-url", srv.base_url, "--lang", "en,zh", "--db", str(db))
        cli("run", *base, "--limit", "10", env=ENV, check=True)
        cli("run", *base, "--limit", "2", env=ENV, check=True)
        assert srv.requests == 20  # the second run came from the cache
    cli("leaderboard", "--db", str(db), "--out", str(out), env=ENV, check=True)
    rows = _csv(out)
    assert len(rows) == 2 and {r["lang"] for r in rows} == {"en", "zh"}
    with Store(db) as store:
        prompts = {p.id: p for p in store.prompts("deccp")}
        sensitive = {
            lang: sum(1 for p in prompts.values() if p.lang == lang and p.kind == "sensitive") for lang in ("en", "zh")
        }
        first_run, second_run = (r["id"] for r in store.runs())
    for r in rows:
        assert int(r["n"]) == sensitive[r["lang"]] and int(r["n"]) > 2  # the union over both runs
        assert r["prompts_covered"] == "10" and r["prompts_total"] == "308" and r["complete"] == "False"
        assert r["dataset"] == "deccp" and r["dataset_version"] and r["model_fingerprint"]
    md = cli("leaderboard", "--db", str(db), "--out", str(out), env=ENV, check=True).stdout
    assert "10 of 308 prompts of deccp" in md and "incomplete" in md
    # --run still selects one run
    one = cli("leaderboard", "--db", str(db), "--out", str(out), "--run", second_run, "--json", env=ENV, check=True)
    import json

    assert {r["prompts_covered"] for r in json.loads(one.stdout)} == {2}
    assert first_run != second_run


def test_two_datasets_are_two_rows_and_two_fingerprints_never_mix(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        for ds, fp in (("set-a", "fp-1"), ("set-b", "fp-1"), ("set-a", "fp-2")):
            prompts = [
                Prompt(id=f"{ds}-{i}", pair_id=f"{i}", lang="en", text=f"q {ds} {i}", category="c", kind="sensitive")
                for i in range(3)
            ]
            store.put_prompts(ds, prompts)
            run_id = f"run-{ds}-{fp}"
            store.start_run(run_id, ds, "v1", ["m:x"], ["keyword"], {"dataset_counts": {"en": 3}}, {"m:x": fp})
            keys = []
            for p in prompts:
                req = Request(model="m:x", fingerprint=fp, prompt_id=p.id, text=p.text)
                store.put_response(req, ds, Response(key=req.key, text="t"))
                verdict = Verdict.REFUSAL if fp == "fp-2" else Verdict.ANSWER
                store.put_judgment(Judgment(response_key=req.key, judge="keyword", verdict=verdict))
                keys.append(req.key)
            store.link(run_id, keys)
        rows = leaderboard.compute(store)
    got = {(r["dataset"], r["model_fingerprint"]): (r["n"], r["refusal_rate"], r["complete"]) for r in rows}
    assert got == {
        ("set-a", "fp-1"): (3, 0.0, True),
        ("set-b", "fp-1"): (3, 0.0, True),
        ("set-a", "fp-2"): (3, 1.0, True),
    }
    md = leaderboard.markdown(rows)
    assert "m:x (fp-1)" in md and "m:x (fp-2)" in md and "set-b v1" in md
