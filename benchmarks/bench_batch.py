"""Batch vs synchronous: HTTP requests made and wall time for N items (default 10,000) through the
real `openai:` backend, the runner and a real SQLite store, against the fake OpenAI server (its
batch endpoints complete a batch `--delay` seconds after it was created; polled every `--poll` s).

Prints both runs' HTTP requests and wall time, and on its last line
`http_calls_batch_vs_sync=X` (batch requests / synchronous requests; lower is better).
Run: .venv/bin/python benchmarks/bench_batch.py [--items 10000 --delay 3 --poll 1] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _common import parse  # noqa: E402
from fakes.batch import BatchBook  # noqa: E402
from fakes.openai_server import FakeOpenAIServer  # noqa: E402

from deccp_eval.backends.contract import BackendOptions  # noqa: E402
from deccp_eval.base.schema import Prompt, SamplingParams  # noqa: E402
from deccp_eval.datasets.loading import Dataset  # noqa: E402
from deccp_eval.run import runner  # noqa: E402
from deccp_eval.store.db import Store  # noqa: E402

MODEL = "openai:bench-model"


def one(items: int, batch: bool, delay: float, poll: float, tmp: Path) -> tuple[int, float, int]:
    """(HTTP requests the server saw, wall seconds, responses stored) for one run."""
    prompts = [
        Prompt(
            id=f"b{i:05d}",
            pair_id=f"b{i:05d}",
            lang="en",
            text=f"Benchmark question number {i}?",
            category="bench",
            kind="sensitive",
        )
        for i in range(items)
    ]
    dataset = Dataset(name="bench", version="1", prompts=prompts)
    db = tmp / ("batch.db" if batch else "sync.db")
    with FakeOpenAIServer(book=BatchBook(delay_s=delay)) as srv, Store(db) as store:
        options = BackendOptions(
            base_url=srv.base_url,
            api_key_env="none",
            max_concurrency=32,
            batch=batch,
            state_db=str(db),
            extra={"batch_poll_s": poll},
        )
        requests = runner.plan(dataset, MODEL, SamplingParams(max_tokens=64))
        t0 = time.perf_counter()
        tally = runner.generate(store, dataset, MODEL, requests, options, runner.new_run_id())
        wall = time.perf_counter() - t0
        calls = srv.arrivals
    return calls, wall, tally.generated


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--delay", type=float, default=3.0, help="seconds before the fake completes a batch")
    ap.add_argument("--poll", type=float, default=1.0, help="seconds between polls")
    args = parse(ap, items=40, delay=0.2, poll=0.1)
    os.environ.setdefault("DECCP_EVAL_BACKOFF_BASE_S", "0.05")
    with tempfile.TemporaryDirectory() as tmp:
        sync_calls, sync_wall, sync_n = one(args.items, False, args.delay, args.poll, Path(tmp))
        batch_calls, batch_wall, batch_n = one(args.items, True, args.delay, args.poll, Path(tmp))
    print(f"synchronous: {sync_n} stored, {sync_calls} HTTP requests, {sync_wall:.1f}s")
    print(
        f"batch:       {batch_n} stored, {batch_calls} HTTP requests, {batch_wall:.1f}s "
        f"(fake batch delay {args.delay:g}s, poll every {args.poll:g}s)"
    )
    print(f"http_calls_batch_vs_sync={batch_calls / max(sync_calls, 1):.6f}")


if __name__ == "__main__":
    main()
