"""Remote-backend throughput: 1,000 requests at concurrency 32 against a fake OpenAI-compatible
server that answers in a fixed 100 ms, through the real `openai:` backend, the runner and a real
SQLite store; then the same run again, fully cached.

Prints wall time, the latency-bound ideal (requests / concurrency x latency), CPU time per
request in this process, the cached re-run's time, and on its last line `ratio_to_ideal=X.XX`
(targets: ratio <= 1.3, cached re-run <= 5% of the first run).
Run: .venv/bin/python benchmarks/bench_api.py [--requests 1000 --concurrency 32 --latency 0.1] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import parse

from deccp_eval.backends.contract import BackendOptions
from deccp_eval.base.schema import Prompt, SamplingParams
from deccp_eval.datasets.loading import Dataset
from deccp_eval.run import runner
from deccp_eval.store.db import Store

ROOT = Path(__file__).resolve().parents[1]
MODEL = "openai:bench-model"


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    """The fake server in its own process, so its threads don't compete for this one's GIL."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fakes.openai_server", "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit(f"fake server did not start: {url!r}")
    return proc, url + "/v1"


def timed_run(store: Store, dataset: Dataset, options: BackendOptions) -> tuple[float, float, runner.ModelTally]:
    requests = runner.plan(dataset, MODEL, SamplingParams(max_tokens=64))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    tally = runner.generate(store, dataset, MODEL, requests, options, runner.new_run_id())
    return time.perf_counter() - wall0, time.process_time() - cpu0, tally


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--latency", type=float, default=0.1)
    args = parse(ap, requests=40, concurrency=8, latency=0.01)

    prompts = [
        Prompt(
            id=f"b{i:05d}",
            pair_id=f"b{i:05d}",
            lang="en",
            text=f"Benchmark question number {i}?",
            category="bench",
            kind="sensitive",
        )
        for i in range(args.requests)
    ]
    dataset = Dataset(name="bench", version="1", prompts=prompts)
    os.environ.setdefault("BENCH_API_KEY", "sk-bench")
    server, base_url = start_server(args.latency)
    try:
        options = BackendOptions(
            base_url=base_url, api_key_env="BENCH_API_KEY", max_concurrency=args.concurrency, timeout_s=30
        )
        # Start-up costs paid once per process whatever N is (a CLI run pays them before its first request):
        import openai  # the SDK import (~0.5 s)

        # ...and its HTTP transport, imported when the first client is made (~0.25 s where trio is installed:
        # the transport imports it when present; selenium, a test dependency, brings it).
        openai.AsyncOpenAI(api_key="sk-warm", base_url=base_url)

        from deccp_eval.base import pluginmanager

        pluginmanager.backends()  # every built-in plugin module

        with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.db") as store:
            wall, cpu, tally = timed_run(store, dataset, options)
            cached_wall, _, cached_tally = timed_run(store, dataset, options)
    finally:
        server.terminate()
        server.wait(timeout=10)

    ideal = args.requests / args.concurrency * args.latency
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (other work slows this CPU-bound "
        f"client down)"
    )
    print(
        f"requests={args.requests} concurrency={args.concurrency} latency={args.latency * 1000:.0f}ms "
        f"generated={tally.generated} errors={tally.errors}"
    )
    print(f"wall:                 {wall:7.2f} s")
    print(f"ideal (latency-bound): {ideal:6.2f} s")
    print(f"cpu per request:      {cpu / args.requests * 1000:7.2f} ms")
    print(
        f"cached re-run:        {cached_wall:7.3f} s ({cached_wall / wall:.1%} of the first run, "
        f"{cached_tally.cached} from cache)"
    )
    print(f"ratio_to_ideal={wall / ideal:.2f}")


if __name__ == "__main__":
    main()
