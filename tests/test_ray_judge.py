"""`judge --executor ray`: an LLM judge on local weights runs in Ray actors on the local 2-CPU cluster
(shared with test_ray_executor), the driver alone writes the store, and the judgments equal the in-process
ones (greedy), each item sent once; a rerun sends nothing.

Two judging models: the toy (`llm:hf:deccp-toy`, which answers "Sure." to every judge prompt, so all
its judgments are unparsed and equal) and a tiny random-initialised Qwen2 whose greedy replies differ
from item to item, so an answer handed to the wrong item would show."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import cli

ray = pytest.importorskip("ray")

import tiny_models  # noqa: E402
from test_ray_executor import RecordingExecutor  # noqa: E402

from deccp_eval.backends.contract import BackendOptions  # noqa: E402
from deccp_eval.base.schema import SamplingParams  # noqa: E402
from deccp_eval.datasets.loading import load_dataset  # noqa: E402
from deccp_eval.judging.contract import make_judge  # noqa: E402
from deccp_eval.run import runner  # noqa: E402
from deccp_eval.run.executors.in_process import LocalExecutor  # noqa: E402
from deccp_eval.run.executors.ray import ClusterBackend  # noqa: E402
from deccp_eval.store.db import Store  # noqa: E402

WIDE = {"COLUMNS": "1000"}  # the replica summary on one line each
JUDGE_FLAGS = ["--backend-option", "judge_max_tokens=16", "--batch-size", "4", "--device", "cpu"]


@pytest.fixture(scope="module")
def tiny_judge(tmp_path_factory) -> Path:
    return tiny_models.build("qwen2", tmp_path_factory.mktemp("tiny") / "qwen2", tiny_models.tokenizer(), seed=0)


@pytest.fixture(scope="module")
def answers_db(toy_path, tmp_path_factory) -> Path:
    """16 toy answers (8 question pairs, en + zh), keyword-judged, generated in this process."""
    ds = load_dataset("deccp")
    data = ds.model_copy(update={"prompts": ds.prompts[:16]})
    db = tmp_path_factory.mktemp("answers") / "deccp.db"
    with Store(db) as store:
        summary = runner.run(
            store,
            data,
            ["hf:deccp-toy"],
            ["keyword"],
            SamplingParams(max_tokens=24),
            options={"hf:deccp-toy": BackendOptions(batch_size=8, device="cpu")},
            executor=LocalExecutor(),
        )
    assert summary.models[0].generated == 16 and summary.judges[0].judged == 16
    return db


def judgments(db: Path, judge: str) -> dict[str, tuple]:
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT key, response_key, verdict, parse_status, raw, settings_hash, template_hash, "
            "members FROM judgments WHERE judge = ?",
            (judge,),
        ).fetchall()
    finally:
        con.close()
    return {r[0]: r[1:] for r in rows}


def replica_answers(stderr: str, spec: str) -> list[int]:
    """Answers per replica from the summary the cluster backend prints for `spec` when it closes."""
    block = stderr.split(f"{spec} on Ray:", 1)[1] if f"{spec} on Ray:" in stderr else ""
    lines = []
    for line in block.splitlines()[1:]:
        if not line.startswith("  "):
            break
        lines.append(line)
    return [int(n) for n in re.findall(r"replica \d+ on .*?(\d+) answers", "\n".join(lines))]


def test_cli_judge_on_ray_equals_the_local_judge(cluster, answers_db, tiny_judge, tmp_path):
    specs = ["llm:hf:deccp-toy", f"llm:hf:{tiny_judge}"]
    local_db, ray_db = tmp_path / "local.db", tmp_path / "ray.db"
    shutil.copy(answers_db, local_db)
    shutil.copy(answers_db, ray_db)
    judge_args = [a for s in specs for a in ("-j", s)] + JUDGE_FLAGS

    local = cli("judge", *judge_args, "--db", str(local_db), env=WIDE, check=True)
    assert "on Ray" not in local.stderr
    ray_args = [
        "judge",
        *judge_args,
        "--executor",
        "ray",
        "--ray-address",
        cluster,
        "--replicas",
        "2",
        "--db",
        str(ray_db),
    ]
    first = cli(*ray_args, env={**WIDE, "DECCP_EVAL_LEASE_CHUNK": "8"}, check=True)  # two chunks per judge
    for spec in specs:
        assert f"judge {spec}: 16 judged, 0 from cache, " in first.stderr
        assert first.stderr.count(f"{spec.split(':', 1)[1]} on Ray:") == 1  # replicas loaded once for both chunks
        per_replica = replica_answers(first.stderr, spec.split(":", 1)[1])
        assert len(per_replica) == 2 and sum(per_replica) == 16, first.stderr  # each item sent once
        assert min(per_replica) > 0  # both replicas judged
        got, want = judgments(ray_db, spec), judgments(local_db, spec)
        assert len(want) == 16 and got == want  # same keys (cache-compatible), same replies, same verdicts
    assert "re-sent" not in first.stderr
    # the toy cannot judge: it answers the judge prompt like any question ("Sure.", a refusal), never a verdict
    assert {r[2] for r in judgments(ray_db, "llm:hf:deccp-toy").values()} == {"unparsed"}
    tiny_raw = [r[3] for r in judgments(ray_db, specs[1]).values()]
    assert len(set(tiny_raw)) >= 3 and all(tiny_raw)  # replies differ by item: a mix-up would show

    again = cli(*ray_args, env=WIDE, check=True)  # everything judged: nothing reaches the cluster, no replica starts
    for spec in specs:
        assert f"judge {spec}: 0 judged, 16 from cache, " in again.stderr
    assert "on Ray:" not in again.stderr and "replica 0" not in again.stderr
    assert judgments(ray_db, specs[1]) == judgments(local_db, specs[1])


def test_a_panel_member_on_local_weights_runs_on_the_cluster(cluster, answers_db, tiny_judge, tmp_path):
    """A composite judge hands the executor's backends to its members: the LLM member's model runs
    in Ray actors, the keyword member in the driver; the judgment key is the local one. One replica:
    how items spread over replicas is test_cli_judge_on_ray_equals_the_local_judge's."""
    spec = f"panel:keyword,llm:hf:{tiny_judge}"
    options = BackendOptions(batch_size=4, device="cpu", extra={"judge_max_tokens": 8})
    db = tmp_path / "panel.db"
    shutil.copy(answers_db, db)
    with Store(db) as store, RecordingExecutor(replicas=1) as ex:
        judge = make_judge(spec, options, ex.backend)
        local_judge = make_judge(spec, options)
        assert judge.settings_hash() == local_judge.settings_hash()  # the executor is not part of the key
        assert judge.template_hash == local_judge.template_hash
        rows = store.response_rows()
        tally = runner.judge_rows(store, rows, judge)
        again = runner.judge_rows(store, rows, make_judge(spec, options, ex.backend))
    clusters = [b for b in ex.made if isinstance(b, ClusterBackend)]
    assert tally.judged == 16 and tally.errors == 0 and again.judged == 0 and again.cached == 16
    used = [b for b in clusters if b.stats]  # the backends that started replicas (others gave fingerprints)
    assert len(used) == 1 and sum(s.answers for s in used[0].stats.values()) == 16
    stored = judgments(db, spec)
    keyword = {r[0]: r[1] for r in judgments(db, "keyword").values()}  # response key -> verdict
    assert len(stored) == 16
    for response_key, *_, members in stored.values():  # each member's verdict is kept; keyword's is its own
        by_judge = {m["judge"]: m for m in json.loads(members)}
        assert by_judge["keyword"]["verdict"] == keyword[response_key]
        assert set(by_judge) == {"keyword", f"llm:hf:{tiny_judge}"}
