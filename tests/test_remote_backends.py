"""The `openai:` and `anthropic:` backends against fake servers on 127.0.0.1 that speak the real
wire formats, with the real SDKs as clients: faults, retries, cache, cost, secrets, fail-fast."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from conftest import cli
from fakes.anthropic_server import FakeAnthropicServer
from fakes.openai_server import FakeOpenAIServer
from fakes.server import FAULT_KINDS, FaultPlan, answer_for, n_tokens, reasoning_for

from deccp_eval.backends.contract import BackendOptions, make_backend
from deccp_eval.backends.pricing import Price, cost, lookup, price_for
from deccp_eval.backends.remote import (
    BACKOFF_ENV,
    AdaptiveLimit,
    Fault,
    RemoteError,
    RetryPolicy,
    parse_retry_after,
    scrub,
)
from deccp_eval.backends.remote.breaker import Breaker
from deccp_eval.backends.remote.faults import UNREACHABLE, connection_fault, unreachable_reason
from deccp_eval.base.errors import UsageError
from deccp_eval.base.schema import Prompt, Request, SamplingParams
from deccp_eval.datasets.loading import Dataset
from deccp_eval.run import runner
from deccp_eval.store.db import Store

KEY = "sk-test-SECRET-123456"
FAST = {BACKOFF_ENV: "0.01"}  # backoff base for CLI subprocesses: retries in milliseconds, not seconds


def prompts(n: int, prefix: str = "q", special: dict[int, str] | None = None) -> list[Prompt]:
    special = special or {}
    return [
        Prompt(
            id=f"{prefix}{i:03d}",
            pair_id=f"{prefix}{i:03d}",
            lang="en",
            category="test",
            kind="sensitive",
            text=f"What happened in case {i}? {special.get(i, '')}".strip(),
        )
        for i in range(n)
    ]


def write_dataset(path: Path, items: list[Prompt]) -> Path:
    path.write_text("".join(p.model_dump_json() + "\n" for p in items), encoding="utf-8")
    return path


def stored(db: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return list(
            conn.execute(
                "SELECT r.*, p.text AS prompt FROM responses r JOIN prompts p "
                "ON p.dataset = r.dataset AND p.id = r.prompt_id ORDER BY r.model, r.prompt_id"
            )
        )
    finally:
        conn.close()


def tally_row(summary: str, model: str) -> list[int]:
    """The numbers in the run summary table's row for `model` (on_response calls, so duplicates show)."""
    line = next(line for line in summary.splitlines() if model in line)
    return [int(n) for n in re.findall(r"\b\d+\b", line.split(model, 1)[1])]


# -- end to end through the CLI -------------------------------------------------------------------------


def test_300_prompts_with_faults_none_lost_none_duplicated_then_all_cached(tmp_path: Path) -> None:
    items = prompts(300)
    data = write_dataset(tmp_path / "p.jsonl", items)
    db = tmp_path / "results" / "deccp.db"
    with FakeOpenAIServer(FaultPlan(fail_first=0.3, retry_after="1", slow_s=10)) as srv:
        args = (
            "run",
            "-m",
            "openai:fake-model",
            "--base-url",
            srv.base_url,
            "--dataset",
            str(data),
            "--db",
            str(db),
            "--timeout",
            "1",
            "--max-concurrency",
            "16",
        )
        first = cli(*args, env={"OPENAI_API_KEY": KEY, **FAST})
        assert first.returncode == 0, first.stderr
        assert tally_row(first.stderr, "openai:fake-model") == [300, 0, 300, 0]  # planned, cached, generated, errors

        assert sum(srv.faults.values()) == 90 and set(srv.faults) == set(FAULT_KINDS)
        rows = stored(db)
        assert len(rows) == 300 and len({r["key"] for r in rows}) == 300
        assert sorted(r["prompt_id"] for r in rows) == [p.id for p in items]
        empty = set(srv.fault_prompts["empty"])
        for r in rows:
            assert r["error"] is None
            assert r["text"] == ("" if r["prompt"] in empty else answer_for(r["prompt"])), r["prompt_id"]
            assert r["tokens_in"] == n_tokens(r["prompt"])
        retried = 90 - len(empty)  # an empty answer is an answer: stored, not retried
        assert srv.requests >= 300 + retried

        log = (db.parent / "deccp-eval.log").read_text(encoding="utf-8")
        for marker in (
            "after 429",
            "Retry-After 1s",
            "after HTTP 500",
            "after HTTP 503",
            "after timeout",
            "after connection error",
            "after malformed response",
            "empty content",
        ):
            assert marker in log, marker

        sent = srv.requests
        second = cli(*args, env={"OPENAI_API_KEY": KEY, **FAST})
        assert second.returncode == 0, second.stderr
        assert srv.requests == sent  # everything came from the store
        assert tally_row(second.stderr, "openai:fake-model") == [300, 300, 0, 0]
        assert len(stored(db)) == 300


def test_api_key_never_reaches_store_logs_reports_or_output(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "p.jsonl", prompts(20, special={3: "LEAKY", 7: "LEAKY"}))
    results = tmp_path / "results"
    db = results / "deccp.db"
    outputs: list[str] = []
    env = {"OPENAI_API_KEY": KEY, "ANTHROPIC_API_KEY": KEY, **FAST}
    # Every fault message the server sends echoes the key; LEAKY prompts get a 400 that echoes it too.
    plan = FaultPlan(
        fail_first=0.5, kinds=("429", "500", "503", "reset", "malformed"), retry_after="0", always={"LEAKY": "400"}
    )
    with FakeOpenAIServer(plan) as srv:
        proc = cli(
            "run",
            "-vv",
            "-m",
            "openai:fake-model",
            "--base-url",
            srv.base_url,
            "-d",
            str(data),
            "--db",
            str(db),
            env=env,
        )
        outputs += [proc.stdout, proc.stderr]
        assert proc.returncode == 1, proc.stderr  # two items failed (400), stored as errors
        assert KEY in srv.credentials  # the key was really sent, so the scan below means something
    errors = [r["error"] for r in stored(db) if r["error"]]
    assert len(errors) == 2 and all("400 Bad Request" in e and "***" in e for e in errors)

    for server_cls, spec in ((FakeOpenAIServer, "openai:other-model"), (FakeAnthropicServer, "anthropic:fake-claude")):
        with server_cls(required_key="sk-the-right-one") as bad:
            proc = cli("run", "-vv", "-m", spec, "--base-url", bad.base_url, "-d", str(data), "--db", str(db), env=env)
            outputs += [proc.stdout, proc.stderr]
            assert proc.returncode == 2 and "401 Unauthorized" in proc.stderr and "Traceback" not in proc.stderr
            assert bad.arrivals == 1

    board = cli("leaderboard", "--db", str(db), "--out", str(results / "leaderboard.csv"))
    outputs += [board.stdout, board.stderr]
    assert board.returncode == 0, board.stderr

    files = [p for p in tmp_path.rglob("*") if p.is_file() and p != data]
    assert {"deccp.db", "deccp-eval.log", "leaderboard.csv"} <= {p.name for p in files}
    for path in files:
        assert KEY.encode() not in path.read_bytes(), path
    for text in outputs:
        assert KEY not in text


# -- fail fast ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("server_cls,backend", [(FakeOpenAIServer, "openai"), (FakeAnthropicServer, "anthropic")])
def test_401_and_404_fail_fast_with_a_clear_message(
    server_cls: type, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_var = "OPENAI_API_KEY" if backend == "openai" else "ANTHROPIC_API_KEY"
    monkeypatch.setenv(env_var, KEY)
    requests = [Request(model=f"{backend}:fake", prompt_id=p.id, text=p.text) for p in prompts(10)]

    with server_cls(required_key="sk-other") as srv:
        engine = make_backend(f"{backend}:fake", BackendOptions(base_url=srv.base_url, max_concurrency=8))
        got: list = []
        with pytest.raises(RemoteError) as err:
            engine.generate(requests, got.append)
        message = str(err.value)
        assert srv.arrivals == 1 and got == []
        assert f"401 Unauthorized from {srv.url}/v1/" in message
        assert f"check the API key in the env var {env_var}" in message and KEY not in message

    with server_cls(models={"real-model"}) as srv:
        engine = make_backend(f"{backend}:no-such-model", BackendOptions(base_url=srv.base_url, max_concurrency=8))
        with pytest.raises(RemoteError) as err:
            engine.generate([r.model_copy(update={"model": f"{backend}:no-such-model"}) for r in requests], got.append)
        message = str(err.value)
        assert srv.arrivals == 1 and got == []
        assert "404 Not Found" in message and "no-such-model" in message and "check the model name" in message


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_args(spec: str, base_url: str, data: Path, db: Path, *extra: str) -> tuple[str, ...]:
    return ("run", "-m", spec, "--base-url", base_url, "--dataset", str(data), "--db", str(db), *extra)


def test_closed_port_exits_2_at_once_with_one_clear_line_and_no_rows(tmp_path: Path) -> None:
    """A mistyped port used to cost minutes of retries and an error row per prompt."""
    data = write_dataset(tmp_path / "p.jsonl", prompts(200))
    db = tmp_path / "results" / "deccp.db"
    url = f"http://127.0.0.1:{closed_port()}/v1"
    t0 = time.monotonic()
    proc = cli(*run_args("openai:fake-model", url, data, db), env={"OPENAI_API_KEY": KEY}, timeout=60)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 2, proc.stderr
    # Mostly interpreter start and imports (~2 s quiet; more on a loaded machine). Before the
    # breaker, 200 prompts took minutes of retries; the engine's own share is checked in-process below.
    assert elapsed < 30, f"{elapsed:.1f}s"
    message = [line for line in proc.stderr.splitlines() if "connection refused" in line]
    assert len(message) == 1 and url in message[0] and "--base-url" in message[0], proc.stderr
    assert "Traceback" not in proc.stderr and KEY not in proc.stderr + proc.stdout
    assert stored(db) == []
    runs = sqlite3.connect(db).execute("SELECT status FROM runs").fetchall()
    assert runs == [("interrupted",)]


@pytest.mark.parametrize("server_cls,backend", [(FakeOpenAIServer, "openai"), (FakeAnthropicServer, "anthropic")])
def test_unreachable_endpoints_stop_the_engine_within_seconds(
    server_cls: type, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connection refused (a closed port) and a TLS failure (https:// to a plain-HTTP server) before
    any answer: one RemoteError naming what failed, where, and the fix; nothing delivered."""
    monkeypatch.setenv("OPENAI_API_KEY" if backend == "openai" else "ANTHROPIC_API_KEY", KEY)
    requests = [Request(model=f"{backend}:fake", prompt_id=p.id, text=p.text) for p in prompts(100)]
    with server_cls() as srv:
        plain = srv.base_url
        cases = [
            (
                plain.replace(srv.url, f"http://127.0.0.1:{closed_port()}"),
                "connection refused",
                "nothing is listening at",
            ),
            (plain.replace("http://", "https://"), "TLS handshake failed", "http:// vs https://"),
        ]
        for url, what, fix in cases:
            engine = make_backend(f"{backend}:fake", BackendOptions(base_url=url, max_concurrency=8))
            engine.sdk()  # the import (seconds on a loaded machine) is not what is timed
            got: list = []
            t0 = time.monotonic()
            with pytest.raises(RemoteError) as err:
                engine.generate(requests, got.append)
            assert time.monotonic() - t0 < 10
            message = str(err.value)
            assert what in message and fix in message and url in message, message
            assert got == [] and KEY not in message
        assert srv.requests == 0


def test_unreachable_reasons_from_the_exception_chain() -> None:
    import socket as sock
    import ssl

    def wrapped(inner: BaseException) -> Exception:
        try:
            try:
                raise inner
            except BaseException as exc:
                raise OSError("All connection attempts failed") from exc
        except OSError as outer:
            try:
                raise type("ConnectError", (Exception,), {})("All connection attempts failed") from None
            except Exception as top:
                top.__context__ = outer  # how httpcore hides the OS error
                return top

    assert unreachable_reason(wrapped(sock.gaierror(-2, "Name or service not known"))) == "DNS lookup failed"
    assert unreachable_reason(wrapped(ConnectionRefusedError(111, "refused"))) == "connection refused"
    assert unreachable_reason(wrapped(ssl.SSLError(1, "wrong version number"))) == "TLS handshake failed"
    assert unreachable_reason(ConnectionResetError(104, "reset by peer")) is None  # reached, then dropped
    assert connection_fault(wrapped(ConnectionRefusedError(111, "refused")), "http://h/v1").kind == UNREACHABLE


def test_wrong_key_exits_2_with_no_rows_through_the_cli(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "p.jsonl", prompts(200))
    db = tmp_path / "results" / "deccp.db"
    with FakeOpenAIServer(required_key="sk-the-right-one") as srv:
        proc = cli(*run_args("openai:fake-model", srv.base_url, data, db), env={"OPENAI_API_KEY": KEY}, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert srv.arrivals == 1  # the first request goes alone: one request, one clear line
    assert "401 Unauthorized" in proc.stderr and "check the API key in the env var OPENAI_API_KEY" in proc.stderr
    assert stored(db) == []


@pytest.mark.parametrize("after", [0, 40], ids=["from-the-start", "mid-run"])
def test_a_3s_outage_is_ridden_out_and_every_answer_stored(tmp_path: Path, after: int) -> None:
    """503 on every request for 3 s. The backoff base is 10 ms, so each request runs out of its 6
    attempts in a third of a second: only because every request fails alike (an outage, not a bad
    prompt) do they keep waiting instead of becoming error rows."""
    items = prompts(150)
    data = write_dataset(tmp_path / "p.jsonl", items)
    db = tmp_path / "results" / "deccp.db"
    with FakeOpenAIServer(latency_s=0.01) as srv:
        srv.outage(3.0, 503, after=after)
        proc = cli(
            *run_args("openai:fake-model", srv.base_url, data, db, "--max-concurrency", "8"),
            env={"OPENAI_API_KEY": KEY, **FAST},
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert srv.faults["outage 503"] > 6  # the outage really happened, and was retried past 6 attempts
    rows = stored(db)
    assert len(rows) == 150 and all(r["error"] is None for r in rows)
    assert sorted(r["text"] for r in rows) == sorted(answer_for(p.text) for p in items)


def test_a_long_outage_stops_after_the_bound_and_a_rerun_resumes(tmp_path: Path) -> None:
    items = prompts(120)
    data = write_dataset(tmp_path / "p.jsonl", items)
    db = tmp_path / "results" / "deccp.db"
    args = ("--max-concurrency", "4", "--backend-option", "outage_s=2")
    with FakeOpenAIServer(latency_s=0.01) as srv:
        srv.outage(float("inf"), 502, after=30)
        proc = cli(
            *run_args("openai:fake-model", srv.base_url, data, db, *args),
            env={"OPENAI_API_KEY": KEY, **FAST},
            timeout=120,
        )
        assert proc.returncode == 2, proc.stderr
        assert "no answer for" in proc.stderr and "rerun the same command to resume" in proc.stderr
        assert "Traceback" not in proc.stderr
        first = stored(db)
        assert 30 <= len(first) < 120 and all(r["error"] is None for r in first)  # no rows for the unanswered

        srv.outage(0)  # recovered
        again = cli(
            *run_args("openai:fake-model", srv.base_url, data, db, *args),
            env={"OPENAI_API_KEY": KEY, **FAST},
            timeout=120,
        )
        assert again.returncode == 0, again.stderr
    rows = stored(db)
    assert len(rows) == 120 and len({r["key"] for r in rows}) == 120 and all(r["error"] is None for r in rows)
    assert tally_row(again.stderr, "openai:fake-model")[:2] == [120, len(first)]  # planned, cached


def test_breaker_trips_on_unreachable_before_any_answer_and_on_long_outages_only() -> None:
    now = [0.0]
    clock = lambda: now[0]  # noqa: E731
    refused = Fault(UNREACHABLE, "connection refused at http://x/v1", retryable=True)
    down = Fault("HTTP 503", "503 Service Unavailable", retryable=True)
    limited = Fault("429", "429 Too Many Requests", retryable=True)
    assert Breaker(60, 10, clock).failure("a", refused) == "connection refused at http://x/v1"  # nothing answered

    breaker = Breaker(outage_s=60, unreachable_s=10, clock=clock)
    breaker.success("z", 0.0)
    assert breaker.failure("a", refused) is None and breaker.holding("a", refused)
    now[0] = 9.0
    assert breaker.failure("b", refused) is None and breaker.remaining() == 1.0
    now[0] = 10.0
    assert "no answer for 10s" in (breaker.failure("a", refused) or "")

    breaker = Breaker(outage_s=60, unreachable_s=10, clock=clock)
    breaker.success("z", 0.0)
    for t in (0.0, 30.0, 59.0):
        now[0] = 100 + t
        assert breaker.failure("a", down) is None and breaker.failure("b", limited) is None
    assert not breaker.holding("a", down)  # one request failing alone: no sign of an outage
    assert breaker.failed_keys == {"a"}  # 429 says the server is alive
    assert breaker.failure("c", down) is None and breaker.holding("a", down) and not breaker.holding("b", limited)
    breaker.untried = False
    assert not breaker.holding("a", down)  # nothing left to send: the last prompts may be bad ones
    breaker.untried = True
    breaker.success("c", 150.0)
    now[0] = 500.0
    assert breaker.failure("d", down) is None  # the clock restarts at the last success
    now[0] = 560.0
    assert "stopping after 60s" in (breaker.failure("e", down) or "")


def test_breaker_tells_a_prompt_the_server_chokes_on_from_an_outage() -> None:
    """A request that fails while requests sent after it get answers is its own problem (it runs out
    of attempts as before); answers to requests sent before it first failed say nothing."""
    now = [10.0]
    breaker = Breaker(outage_s=60, unreachable_s=10, clock=lambda: now[0])
    down = Fault("HTTP 503", "503 Service Unavailable", retryable=True)
    breaker.failure("poison", down)
    breaker.failure("other", down)
    breaker.success("straggler", sent=9.0)  # sent before "poison" first failed
    now[0] = 11.0
    breaker.failure("poison", down)
    breaker.failure("other", down)
    assert breaker.holding("poison", down)  # still looks like an outage
    breaker.success("fresh", sent=10.5)  # sent after: the endpoint answers
    now[0] = 12.0
    breaker.failure("poison", down)
    assert not breaker.holding("poison", down)


def test_missing_key_is_a_clear_error_before_any_request_and_none_means_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("MY_PROVIDER_KEY", raising=False)
    request = Request(model="openai:fake", prompt_id="a", text="hello")
    with FakeOpenAIServer() as srv:
        engine = make_backend("openai:fake", BackendOptions(base_url=srv.base_url, api_key_env="MY_PROVIDER_KEY"))
        with pytest.raises(UsageError, match="MY_PROVIDER_KEY is not set.*--api-key-env none"):
            engine.check()
        with pytest.raises(UsageError):
            engine.generate([request], lambda r: None)
        assert srv.requests == 0

        # `none`: a local server without keys; a key in the default variable is not sent to it
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        got: list = []
        make_backend("openai:fake", BackendOptions(base_url=srv.base_url, api_key_env="none")).generate(
            [request], got.append
        )
        assert got[0].text == answer_for("hello") and srv.credentials == {"no-key"}


def test_generate_called_from_async_code_still_delivers_in_the_callers_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """In a notebook an event loop is already running: responses still arrive in the calling thread."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    requests = [Request(model="openai:fake", prompt_id=p.id, text=p.text) for p in prompts(5)]
    threads: set[int] = set()
    got: list = []

    def on_response(resp: object) -> None:
        threads.add(threading.get_ident())
        got.append(resp)

    async def cell() -> int:
        make_backend("openai:fake", BackendOptions(base_url=srv.base_url)).generate(requests, on_response)
        return threading.get_ident()

    with FakeOpenAIServer() as srv:
        caller = asyncio.run(cell())
    assert threads == {caller} and sorted(r.text for r in got) == sorted(answer_for(r.text) for r in requests)


# -- cache flags ----------------------------------------------------------------------------------------


def test_retry_errors_resends_only_errors_and_no_cache_resends_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv(BACKOFF_ENV, "0.001")
    data = Dataset(name="flags", version="1", prompts=prompts(20, special={i: "DOWN" for i in range(0, 20, 4)}))
    spec = "openai:fake-model"
    with FakeOpenAIServer(FaultPlan(always={"DOWN": "503"})) as srv, Store(tmp_path / "d.db") as store:
        options = {spec: BackendOptions(base_url=srv.base_url, max_retries=3)}

        def run(**flags: bool) -> runner.ModelTally:
            return runner.run(store, data, [spec], [], SamplingParams(), options=options, **flags).models[0]

        first = run()
        assert (first.generated, first.errors) == (15, 5) and srv.requests == 15 + 5 * 3
        failed = [r for r in store.response_rows() if r["error"]]
        assert len(failed) == 5
        assert all(
            r["error"].startswith(
                f"failed after 3 attempts; last: HTTP 503: 503 Service Unavailable from {srv.base_url}/chat/completions"
            )
            for r in failed
        )

        sent = srv.requests
        again = run()
        assert again.cached == 20 and srv.requests == sent  # stored errors are not re-sent by default

        srv.plan.always.clear()  # the outage is over
        retried = run(retry_errors=True)
        assert (retried.cached, retried.generated, retried.errors) == (15, 5, 0) and srv.requests == sent + 5
        assert not [r for r in store.response_rows() if r["error"]]

        sent = srv.requests
        forced = run(no_cache=True)
        assert forced.generated == 20 and srv.requests == sent + 20
        assert len(store.response_rows()) == 20


# -- models file: reasoning, system prompt, cost; Anthropic end to end -------------------------------------


def test_models_file_reasoning_split_and_cost_for_both_backends(tmp_path: Path) -> None:
    items = prompts(8)
    data = write_dataset(tmp_path / "p.jsonl", items)
    db = tmp_path / "results" / "deccp.db"
    anthropic_faults = FaultPlan(fail_first=0.5, kinds=("429", "529", "reset", "malformed"), retry_after="0")
    with FakeOpenAIServer() as oa, FakeAnthropicServer(anthropic_faults) as an:
        models = tmp_path / "models.yaml"
        models.write_text(
            f"""
models:
  reasoner:
    backend: openai
    model: fake-reasoner
    base_url: {oa.base_url}
    api_key_env: FAKE_OA_KEY
    prices: {{input: 2.0, output: 10.0}}
  thinker:
    backend: openai
    model: fake-think
    base_url: {oa.base_url}
    api_key_env: none
  claude:
    backend: anthropic
    model: fake-claude-thinking
    base_url: {an.base_url}
    api_key_env: FAKE_AN_KEY
    prices: {{input: 3.0, output: 15.0}}
    params: {{system_prompt: Be brief., max_tokens: 300}}
""",
            encoding="utf-8",
        )
        proc = cli(
            "run",
            "-m",
            "reasoner",
            "-m",
            "thinker",
            "-m",
            "claude",
            "--models-file",
            str(models),
            "-d",
            str(data),
            "--db",
            str(db),
            env={"FAKE_OA_KEY": "k-oa", "FAKE_AN_KEY": "k-an", **FAST},
        )
        assert proc.returncode == 0, proc.stderr
        assert an.faults and all(b.get("system") == "Be brief." and b["max_tokens"] == 300 for b in an.bodies)
        assert not any("temperature" in b or "top_p" in b for b in an.bodies)
        assert oa.credentials == {"k-oa", "no-key"} and an.credentials == {"k-an"}

    rows = {(r["model"], r["prompt_id"]): r for r in stored(db)}
    assert len(rows) == 24
    for p in items:
        r = rows[("openai:fake-reasoner", p.id)]
        assert (r["text"], r["reasoning"]) == (answer_for(p.text), reasoning_for(p.text))
        assert r["cost"] == pytest.approx((r["tokens_in"] * 2.0 + r["tokens_out"] * 10.0) / 1e6)
        assert r["tokens_in"] == n_tokens(p.text) and r["cost"] > 0

        r = rows[("openai:fake-think", p.id)]
        assert (r["text"], r["reasoning"], r["cost"]) == (answer_for(p.text), reasoning_for(p.text), None)

        r = rows[("anthropic:fake-claude-thinking", p.id)]
        answer = answer_for(p.text, "Be brief.")
        assert (r["text"], r["reasoning"], r["finish_reason"]) == (answer, reasoning_for(p.text), "end_turn")
        assert (r["tokens_in"], r["tokens_out"]) == (n_tokens(p.text, "Be brief."), n_tokens(answer))
        assert r["cost"] == pytest.approx((r["tokens_in"] * 3.0 + r["tokens_out"] * 15.0) / 1e6)

    board = json.loads(
        cli("leaderboard", "--json", "--db", str(db), "--out", str(tmp_path / "lb.csv"), check=True).stdout
    )
    by_model = {row["model"]: row for row in board}
    assert by_model["openai:fake-reasoner"]["cost_usd"] > 0 and by_model["openai:fake-think"]["cost_usd"] == 0


# -- the pieces ----------------------------------------------------------------------------------------


def test_price_table_lookup_and_override() -> None:
    assert lookup("gpt-4o-mini") == Price(input=0.15, output=0.60, batch_input=0.075, batch_output=0.30)
    assert lookup("gpt-4o-mini-2024-07-18") == lookup("gpt-4o-mini")  # dated snapshot
    assert lookup("openai/gpt-4o") == lookup("gpt-4o")  # OpenRouter-style prefix
    assert lookup("gpt-4o-audio-preview") is None  # not a snapshot of gpt-4o: unknown, not guessed
    assert lookup("claude-haiku-4-5-20251001") == lookup("claude-haiku-4-5")
    assert price_for("gpt-4o", {"input": 1.0, "output": 2.0}) == Price(input=1.0, output=2.0)
    assert price_for("my-local-model") is None
    assert cost(Price(input=1.0, output=3.0), 1_000_000, 2_000_000) == pytest.approx(7.0)
    assert cost(None, 10, 10) is None and cost(Price(input=1, output=1), None, 5) is None
    with pytest.raises(UsageError, match="input"):
        price_for("x", {"inp": 1.0, "output": 2.0})


def test_retry_policy_honours_retry_after_and_grows() -> None:
    policy = RetryPolicy(attempts=6, base_s=1.0, max_s=60.0)
    assert policy.wait(1, None, 0.0) == 1.0 and policy.wait(3, None, 0.0) == 4.0
    assert 4.0 <= policy.wait(3, None, 0.5) <= 5.0  # jitter stays within one base
    assert policy.wait(1, 7.5, 0.0) == 7.5  # never sooner than Retry-After
    assert policy.wait(1, 10_000, 0.0) == policy.retry_after_cap_s
    assert policy.wait(20, None, 0.0) == 60.0
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # a date in the past
    assert parse_retry_after({}) is None
    assert scrub(f"bad key {KEY}!", [KEY]) == "bad key ***!" and scrub("abc", [None, "ab"]) == "abc"


def test_adaptive_limit_first_alone_halves_on_429_recovers_slowly() -> None:
    limit = AdaptiveLimit(32)
    assert limit.limit == 1  # the first request goes alone
    limit.settled()
    assert limit.limit == 32
    limit.rate_limited(epoch=0)
    limit.rate_limited(epoch=0)  # the same wave: cut once
    assert limit.limit == 16
    limit.rate_limited(epoch=1)
    assert limit.limit == 8
    for _ in range(8):
        limit.succeeded()
    assert limit.limit == 9  # +1 per `limit` successes


def test_adaptive_limit_opens_after_the_grace_and_abort_stops_waiters() -> None:
    async def slow_first_answer() -> int:
        limit = AdaptiveLimit(4, grace_s=0.01)
        async with limit.slot():  # the first request: its answer has not come back

            async def second() -> int:
                async with limit.slot():
                    return limit.limit

            return await asyncio.wait_for(second(), timeout=30)  # opens on the grace, not on the answer

    assert asyncio.run(slow_first_answer()) == 4

    async def fatal_first_answer() -> bool:
        limit = AdaptiveLimit(4, grace_s=30)
        async with limit.slot():
            waiter = asyncio.ensure_future(limit.slot().__aenter__())
            await asyncio.sleep(0)
            limit.abort()  # e.g. a 401: nobody waiting may start
            await asyncio.gather(waiter, return_exceptions=True)
            return waiter.cancelled()

    assert asyncio.run(fatal_first_answer())


def test_provider_content_filter_is_stored_as_a_censored_answer(tmp_path: Path) -> None:
    """A 400 'data_inspection_failed' is the provider censoring the question: kept as an empty answer
    (finish_reason content_filter) that judges count as a refusal, not as an error to retry."""
    import sqlite3

    data = tmp_path / "set.jsonl"
    data.write_text('{"id": "a", "text": "BLOCKED question about 1989"}\n{"id": "b", "text": "fine question"}\n')
    db = tmp_path / "f.db"
    with FakeOpenAIServer(FaultPlan(always={"BLOCKED": "blocked"})) as srv:
        proc = cli(
            "run",
            "-m",
            "openai:qwen-max",
            "--base-url",
            srv.base_url,
            "-d",
            str(data),
            "--db",
            str(db),
            env={"OPENAI_API_KEY": "sk-test"},
        )
        assert proc.returncode == 0, proc.stderr
        assert srv.per_prompt["BLOCKED question about 1989"] == 1  # not retried
    con = sqlite3.connect(db)
    rows = dict(con.execute("SELECT prompt_id, finish_reason || '|' || coalesce(error, '') FROM responses"))
    assert rows["a"] == "content_filter|" and rows["b"] == "stop|"
    verdict = con.execute(
        "SELECT j.verdict FROM judgments j JOIN responses r ON r.key = j.response_key WHERE r.prompt_id = 'a'"
    ).fetchone()[0]
    assert verdict == "refusal"
