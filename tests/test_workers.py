"""Several `deccp-eval run` processes on one store split the work through leases: nothing is paid twice."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from fakes.judge_server import FakeJudgeServer

from deccp_eval.datasets.loading import load_dataset
from deccp_eval.run.workers import Worker
from deccp_eval.store.db import Store
from deccp_eval.store.sql import now

KEY = "sk-test-workers"


def test_three_workers_send_each_of_616_prompts_once(tmp_path: Path) -> None:
    """Processes sharing one store send each request once (unleased, two sent 1,232 requests for 616 prompts).
    Judging with an LLM judge is leased the same way: 616 answers, 616 judgments, nothing twice."""
    data = load_dataset("deccp").filter(langs=["en", "zh"])
    assert len(data.prompts) == 616
    db = tmp_path / "results" / "deccp.db"
    env = {**os.environ, "OPENAI_API_KEY": KEY, "DECCP_EVAL_BACKOFF_BASE_S": "0.01"}
    with FakeJudgeServer(latency_s=0.02) as srv:
        args = [
            sys.executable,
            "-m",
            "deccp_eval.cli",
            "run",
            "-m",
            "openai:fake-model",
            "-j",
            "llm:openai:judge-rules",
            "--base-url",
            srv.base_url,
            "--lang",
            "en,zh",
            "--max-concurrency",
            "8",
            "--db",
            str(db),
        ]
        procs = [
            subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(3)
        ]
        outs = [p.communicate(timeout=600) for p in procs]
        for p, (_out, err) in zip(procs, outs):
            assert p.returncode == 0, err
        assert srv.requests == 2 * 616, srv.requests  # 616 answers + 616 judgments
        assert max(srv.per_prompt.values()) == 1 and len(srv.per_prompt) == 2 * 616
    con = sqlite3.connect(db)
    keys = [r[0] for r in con.execute("SELECT key FROM responses")]
    assert len(keys) == 616 and len(set(keys)) == 616
    assert con.execute("SELECT COUNT(*) FROM responses WHERE error IS NOT NULL").fetchone()[0] == 0
    assert con.execute("SELECT COUNT(*) FROM judgments").fetchone()[0] == 616
    assert con.execute("SELECT COUNT(*) FROM leases").fetchone()[0] == 0  # every lease released
    # every worker's run saw all 616 answers (its own or another's) and judged them
    runs = [r[0] for r in con.execute("SELECT id FROM runs")]
    assert len(runs) == 3
    for rid in runs:
        assert con.execute("SELECT COUNT(*) FROM run_items WHERE run_id=?", (rid,)).fetchone()[0] == 616
    # the work was really shared: more than one worker generated something
    tallies = [
        [int(n) for n in re.findall(r"\b\d+\b", line.split("openai:fake-model", 1)[1])]
        for _, err in outs
        for line in err.splitlines()
        if "openai:fake-model" in line and "│" in line
    ]
    generated = [t[2] for t in tallies]  # planned, from cache, generated, errors
    assert all(t[0] == 616 and t[1] + t[2] == 616 for t in tallies), tallies
    assert sum(generated) == 616 and sum(1 for g in generated if g) >= 2, generated


def test_claim_skips_live_leases_and_retakes_expired_ones(tmp_path: Path) -> None:
    keys = [f"k{i}" for i in range(10)]
    with Store(tmp_path / "s.db") as store:
        since = now()
        a = store.claim(keys, "A", lease_s=0.3, limit=4, since=since)
        b = store.claim(keys, "B", lease_s=60, limit=100, since=since)
        assert a == keys[:4] and b == keys[4:]
        assert store.claim(keys, "C", lease_s=60, limit=100, since=since) == []  # all live
        time.sleep(0.4)  # A died: its leases expire
        assert store.claim(keys, "C", lease_s=60, limit=100, since=since) == keys[:4]
        assert store.leased_by_others(keys, "C") == set(keys[4:])


def test_worker_waits_for_a_live_worker_then_adopts_a_dead_ones_keys(tmp_path: Path) -> None:
    from deccp_eval.base.schema import Request, Response

    reqs = {f"p{i}": Request(model="x:y", prompt_id=f"p{i}", text=f"q{i}") for i in range(6)}
    by_key = {r.key: r for r in reqs.values()}
    with Store(tmp_path / "s.db") as store:
        since = now()
        live = store.claim([reqs["p0"].key, reqs["p1"].key], "live", lease_s=60, limit=2, since=since)
        dead = store.claim([reqs["p2"].key], "dead", lease_s=1.0, limit=1, since=since)
        assert len(live) == 2 and len(dead) == 1
        sent: Counter[str] = Counter()

        def send(keys: list[str]) -> None:
            for k in keys:
                sent[k] += 1
                store.put_response(by_key[k], "d", Response(key=k, text="mine"))
            # meanwhile the live worker finishes its two keys
            for k in live:
                if store.get_response(k) is None:
                    store.put_response(by_key[k], "d", Response(key=k, text="theirs"))

        with Worker(store, lease_s=60, poll_s=0.1) as worker:
            elsewhere = worker.run(list(by_key), send, chunk=2)
    assert elsewhere == 2  # the live worker's two answers were waited for, not re-sent
    assert set(sent) == set(by_key) - set(live) and max(sent.values()) == 1  # the dead one's key adopted once


def test_leases_of_a_killed_local_worker_are_reaped_at_once(tmp_path: Path) -> None:
    import socket
    import subprocess

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with Store(tmp_path / "s.db") as store:
        store.claim(["a", "b"], f"{socket.gethostname()}:{dead.pid}:abcd1234", lease_s=600, limit=2, since=now())
        store.claim(["c"], f"other-host:{dead.pid}:abcd1234", lease_s=600, limit=1, since=now())
        with Worker(store) as worker:
            assert worker.reap_local() == 1
        assert store.leased_by_others(["a", "b", "c"], "me") == {"c"}  # another host's lease is kept


def test_killed_worker_loses_nothing_and_repeats_at_most_its_in_flight_requests(tmp_path: Path) -> None:
    import signal

    from fakes.openai_server import FakeOpenAIServer
    from fakes.server import answer_for

    data = tmp_path / "set.jsonl"
    data.write_text("".join(f'{{"id": "q{i:03d}", "text": "question number {i}"}}\n' for i in range(120)))
    db = tmp_path / "r.db"
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    with FakeOpenAIServer(latency_s=0.05) as srv:
        args = [
            sys.executable,
            "-m",
            "deccp_eval.cli",
            "run",
            "-m",
            "openai:fake-model",
            "--base-url",
            srv.base_url,
            "-d",
            str(data),
            "--max-concurrency",
            "4",
            "--db",
            str(db),
        ]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    con = sqlite3.connect(db)
                    n = con.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
                    con.close()
                except sqlite3.Error:
                    n = 0
                if n >= 20:
                    break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        sent_before = srv.requests
        rerun = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
        # at most the killed one's in-flight requests (4) and the answers it had received but not yet
        # committed: the writer commits every 50 ms, 4 answers at most at concurrency 4 and 50 ms latency
        assert srv.requests - sent_before <= 120 and srv.requests <= 120 + 4 + 4
    con = sqlite3.connect(db)
    rows = dict(con.execute("SELECT p.text, r.text FROM responses r JOIN prompts p ON p.id = r.prompt_id"))
    assert len(rows) == 120 and all(text == answer_for(q) for q, text in rows.items())
    assert con.execute("SELECT COUNT(*) FROM leases").fetchone()[0] == 0
