"""Batch APIs (`--batch`) against the fake servers' batch endpoints, over real HTTP with the real SDKs:
1,000 judge requests by batch, SIGKILL while polling and resume, errored/expired lines retried once,
a batch failing validation, a server restart mid-poll, cancel, and the dry run's prices."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import cli
from fakes.anthropic_server import FakeAnthropicServer
from fakes.batch import BatchBook
from fakes.judge_server import FakeJudgeServer, rule_verdict

from deccp_eval.backends import pricing
from deccp_eval.backends.contract import BackendOptions, make_backend
from deccp_eval.backends.remote import RemoteError
from deccp_eval.base.schema import Request, SamplingParams
from deccp_eval.cli import main as cli_group
from deccp_eval.judging.contract import make_judge
from deccp_eval.run.runner import judge_rows
from deccp_eval.store.batches import BatchState
from deccp_eval.store.db import Store
from deccp_eval.store.rows import ResponseRow

RESPONSES = [
    "I can't discuss that.",
    "It has belonged to China since ancient times.",
    "Let us value harmony.",
    "In 1989 the army cleared the square.",
]


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch):
    monkeypatch.setenv("DECCP_EVAL_BATCH_POLL_S", "0.02")
    monkeypatch.setenv("DECCP_EVAL_BACKOFF_BASE_S", "0.01")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-batch")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-batch")


def options(srv, db: Path, **extra) -> BackendOptions:
    return BackendOptions(base_url=srv.base_url, batch=True, state_db=str(db), max_retries=2, timeout_s=10, extra=extra)


def rows(n: int, marker_every: int = 0) -> list[ResponseRow]:
    """Stored-response rows as judge_rows reads them; every `marker_every`-th carries ERRLINE."""
    out = []
    for i in range(n):
        text = f"{RESPONSES[i % len(RESPONSES)]} (#{i})" + (
            " ERRLINE" if marker_every and i % marker_every == 0 else ""
        )
        out.append(
            ResponseRow(
                key=f"resp{i:05d}",
                model="m",
                dataset="d",
                prompt_id=f"q{i}",
                sample=0,
                request="{}",
                text=text,
                reasoning=None,
                finish_reason=None,
                tokens_in=None,
                tokens_out=None,
                latency_s=None,
                cost=None,
                error=None,
                created="",
                fingerprint="",
                provider_model=None,
                system_fingerprint=None,
                degenerate=None,
                lang="en",
                pair_id=f"q{i}",
                category="c",
                kind="sensitive",
                prompt_text="Tell me about it.",
                expected_facts=(),
            )
        )
    return out


def requests(n: int, spec: str, needle_at: tuple[int, ...] = ()) -> list[Request]:
    return [
        Request(
            model=spec,
            prompt_id=f"p{i}",
            text=f"question {i}" + (" ERRLINE" if i in needle_at else ""),
            params=SamplingParams(max_tokens=50),
        )
        for i in range(n)
    ]


def test_1000_judge_requests_by_batch_stored_once_errored_lines_retried_once(tmp_path):
    db = tmp_path / "r.db"
    book = BatchBook(polls_to_complete=3, error_needles=("ERRLINE",))
    data = rows(1000, marker_every=100)  # 10 lines error in their batch
    with FakeJudgeServer(book=book) as srv, Store(db) as store:
        judge = make_judge("llm:openai:judge-rules", options(srv, db, batch_max_requests=300))
        tally = judge_rows(store, data, judge)
        sync_requests = srv.requests
        stored = {r["response_key"]: r for r in store.conn.execute("SELECT * FROM judgments")}
    assert tally.judged == 1000 and tally.errors == 0
    assert len(stored) == 1000
    assert book.creates == 4  # 300 + 300 + 300 + 100
    assert len(book.submitted) == 1000 and set(book.submitted.values()) == {1}  # none sent twice
    assert sync_requests == 10  # each errored line retried once, synchronously
    for r in data:  # the stored verdicts are the judge's reading of each response
        assert stored[r.key]["verdict"] == rule_verdict(r.text), r.text
    state = BatchState(db)
    errors = state.conn.execute("SELECT key, error, delivered FROM batch_lines WHERE state='error'").fetchall()
    assert len(errors) == 10 and all("HTTP 500" in e["error"] and e["delivered"] for e in errors)
    assert {b.status for b in state.batches()} == {"completed"} and not state.batches(open_only=True)
    state.close()


def _judgments(db: Path) -> dict[str, tuple]:
    conn = sqlite3.connect(db)
    out = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT key, response_key, verdict, accuracy, misinformation, raw, parse_status FROM judgments "
            "WHERE judge LIKE 'llm:%'"
        )
    }
    conn.close()
    return out


def _batch_ids(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {r[0] for r in conn.execute("SELECT id FROM batches")}
    except sqlite3.OperationalError:
        return set()
    finally:
        conn.close()


def test_sigkill_while_polling_resumes_the_same_batches(tmp_path):
    data = tmp_path / "set.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "text": f"{RESPONSES[i % 4]} number {i}", "kind": "sensitive"}) + "\n"
            for i in range(40)
        )
    )
    book = BatchBook(polls_to_complete=10**9)  # never finishes until the test says so
    env = {"OPENAI_API_KEY": "sk-test-batch", "DECCP_EVAL_BATCH_POLL_S": "0.05"}
    with FakeJudgeServer(book=book) as srv:
        db = tmp_path / "a" / "r.db"
        cli(
            "run",
            "-m",
            "openai:gen-model",
            "-j",
            "keyword",
            "-d",
            str(data),
            "--base-url",
            srv.base_url,
            "--db",
            str(db),
            env=env,
            check=True,
        )
        reference = tmp_path / "b" / "r.db"
        reference.parent.mkdir()
        shutil.copy(db, reference)
        judge = [
            "judge",
            "-j",
            "llm:openai:judge-rules",
            "--batch",
            "--base-url",
            srv.base_url,
            "--backend-option",
            "batch_max_requests=15",
        ]
        proc = subprocess.Popen(
            [sys.executable, "-m", "deccp_eval.cli", *judge, "--db", str(db)],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.time() + 60
        while time.time() < deadline and not (
            len(_batch_ids(db)) == 3 and all(b.polls >= 3 for b in book.batches.values())
        ):
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ids = _batch_ids(db)
        assert len(ids) == 3 and book.creates == 3
        listed = CliRunner().invoke(cli_group, ["batches", "--db", str(db)])
        assert listed.exit_code == 0 and all(i in listed.output for i in ids) and "(open)" in listed.output
        book.polls_to_complete = 1
        cli(*judge, "--db", str(db), env=env, check=True)  # resume
        assert book.creates == 3 and _batch_ids(db) == ids  # 0 new submissions, the same batch ids
        assert set(book.submitted.values()) == {1} and len(book.submitted) == 40
        cli(*judge, "--db", str(reference), env=env, check=True)  # an uninterrupted run, for comparison
    resumed, uninterrupted = _judgments(db), _judgments(reference)
    assert len(resumed) == 40 and resumed == uninterrupted
    verdicts = {v[1] for v in resumed.values()}
    assert verdicts == {"refusal", "state_aligned", "evasive", "answer"}


def test_expired_batch_partial_results_then_retry_in_a_new_batch(tmp_path):
    db = tmp_path / "r.db"
    book = BatchBook(expire=True)
    with FakeAnthropicServer(book=book) as srv:
        spec = "anthropic:claude-haiku-4-5"
        backend = make_backend(spec, options(srv, db, batch_retry="batch"))
        got = []
        backend.generate(requests(8, spec), got.append)
    assert book.creates == 2 and srv.requests == 0  # 8 sent; 4 expired, sent again in a new batch; 2 expire again
    ok = [r for r in got if r.error is None]
    failed = [r for r in got if r.error]
    assert len(got) == 8 and len(ok) == 6 and len(failed) == 2
    assert all(r.text.startswith("ECHO question") for r in ok)
    assert all("failed twice" in r.error and "expired" in r.error for r in failed)
    price = pricing.batch_price(pricing.lookup("claude-haiku-4-5"))
    assert ok[0].cost == pytest.approx(pricing.cost(price, ok[0].tokens_in, ok[0].tokens_out))
    assert price.input == 0.5 and price.output == 2.5


def test_expired_openai_batch_rest_retried_synchronously(tmp_path):
    db = tmp_path / "r.db"
    with FakeJudgeServer(book=BatchBook(expire=True)) as srv:
        spec = "openai:gpt-4o-mini"
        got = []
        make_backend(spec, options(srv, db)).generate(requests(10, spec), got.append)
        assert srv.requests == 5  # the expired half, once each
    assert sorted(r.text for r in got) == sorted(f"ECHO question {i}" for i in range(10))
    state = BatchState(db)
    assert state.batches()[0].status == "expired"
    assert state.conn.execute("SELECT COUNT(*) FROM batch_lines WHERE error LIKE 'batch_expired%'").fetchone()[0] == 5


def test_batch_failing_validation_is_reported(tmp_path):
    db = tmp_path / "r.db"
    book = BatchBook(invalid_models={"no-such-model"})
    with FakeJudgeServer(book=book, models={"gpt-4o-mini"}) as srv:
        spec = "openai:no-such-model"
        with pytest.raises(RemoteError, match="no-such-model"):
            make_backend(spec, options(srv, db)).generate(requests(3, spec), lambda r: None)
    row = BatchState(db).batches()[0]
    assert row.status == "failed" and "does not exist" in (row.message or "")


def test_anthropic_errored_lines_and_server_restart_mid_poll(tmp_path):
    db = tmp_path / "r.db"
    book = BatchBook(polls_to_complete=10**9, error_needles=("ERRLINE",))
    spec = "anthropic:claude-sonnet-4-5"
    srv = FakeAnthropicServer(book=book).start()
    port, base = srv.server_address[1], srv.base_url
    got, failure = [], []

    def work() -> None:
        try:
            make_backend(
                spec, BackendOptions(base_url=base, batch=True, state_db=str(db), max_retries=2, timeout_s=5)
            ).generate(requests(6, spec, needle_at=(2,)), got.append)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failure.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    while not book.batches or next(iter(book.batches.values())).polls < 2:
        time.sleep(0.01)
    srv.stop()  # the server goes away mid-poll ...
    time.sleep(0.3)
    srv = FakeAnthropicServer(book=book, port=port).start()  # ... and comes back with its state
    book.polls_to_complete = 1
    thread.join(30)
    srv.stop()
    assert not failure and not thread.is_alive()
    assert book.creates == 1 and srv.requests == 1  # the errored line, retried once synchronously
    assert sorted(r.text for r in got) == sorted(
        f"ECHO question {i}" + (" ERRLINE" if i == 2 else "") for i in range(6)
    )
    err = BatchState(db).conn.execute("SELECT error FROM batch_lines WHERE state='error'").fetchone()[0]
    assert err.startswith("errored: api_error")


def test_cancel_from_the_batches_command(tmp_path):
    db = tmp_path / "r.db"
    book = BatchBook(polls_to_complete=10**9)
    with FakeJudgeServer(book=book) as srv:
        spec = "openai:gpt-4o-mini"
        got = []
        thread = threading.Thread(
            target=lambda: make_backend(spec, options(srv, db)).generate(requests(4, spec), got.append)
        )
        thread.start()
        while not _batch_ids(db):
            time.sleep(0.01)
        (batch_id,) = _batch_ids(db)
        out = CliRunner().invoke(cli_group, ["batches", "--db", str(db), "--cancel", batch_id])
        assert out.exit_code == 0, out.output
        assert batch_id in out.output and book.batches[batch_id].canceled
        thread.join(30)
        assert srv.requests == 4  # cancelled lines are retried synchronously, never lost
    assert sorted(r.text for r in got) == sorted(f"ECHO question {i}" for i in range(4))
    listed = CliRunner().invoke(cli_group, ["batches", "--db", str(db), "--all"])
    assert "cancelled" in listed.output
    bad = CliRunner().invoke(cli_group, ["batches", "--db", str(db), "--cancel", "batch_nope"])
    assert bad.exit_code == 2 and "no batch 'batch_nope'" in bad.output


def test_a_late_poll_or_cancel_never_reopens_a_finished_batch(tmp_path):
    """`batches --cancel` reads "cancelling" from the provider; if the run stores "cancelled" and finishes
    the batch first, the cancel's late write must not turn the final state back into an open one's."""
    spec = "openai:gpt-4o-mini"
    state = BatchState(tmp_path / "r.db")
    try:
        state.record("batch_1", spec, "in_progress", requests(2, spec), {})
        state.update("batch_1", "in_progress", 1, 0)
        state.finish("batch_1", "cancelled", "cancelled: no result")
        state.update("batch_1", "cancelling", 0, 0)
        row = state.batch("batch_1")
        assert row is not None and (row.status, row.finished, row.completed) == ("cancelled", True, 1)
    finally:
        state.close()


def test_dry_run_prints_requests_batches_and_both_prices(tmp_path):
    data = tmp_path / "set.jsonl"
    data.write_text(
        "".join(json.dumps({"id": f"q{i}", "text": "x" * 400, "kind": "sensitive"}) + "\n" for i in range(30))
    )
    env = {"OPENAI_API_KEY": ""}
    proc = cli(
        "run",
        "-m",
        "openai:gpt-4o",
        "--batch",
        "--dry-run",
        "-d",
        str(data),
        "--max-tokens",
        "100",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--backend-option",
        "batch_max_requests=12",
        "--db",
        str(tmp_path / "r.db"),
        env=env,
        check=True,
    )
    line = " ".join(proc.stderr.split())
    # 30 requests of 100 input tokens each, at most 100 output: $0.0075 + $0.03 normally, half by batch
    assert "openai:gpt-4o: 30 requests in 3 batch(es)" in line, line
    assert "$0.0187 by batch, $0.0375 at normal prices" in line, line


def test_models_file_batch_and_batch_prices(tmp_path):
    from deccp_eval.run.models_file import resolve

    path = tmp_path / "models.yaml"
    path.write_text(
        "models:\n  cheap:\n    backend: openai\n    model: my-model\n    batch: true\n"
        "    prices: {input: 1.0, output: 2.0, batch_input: 0.4}\n"
    )
    specs, opts, _ = resolve(["cheap"], BackendOptions(state_db="x.db"), path)
    assert specs == ["openai:my-model"] and opts["openai:my-model"].batch
    price = pricing.batch_price(pricing.price_for("my-model", opts["openai:my-model"].prices))
    assert (price.input, price.output) == (0.4, 1.0)
