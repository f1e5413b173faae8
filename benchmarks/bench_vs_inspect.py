"""The same 1,000 requests through `deccp-eval run` and through inspect_ai, from the shell, as users
run them: each tool a whole process against one fake OpenAI-compatible server (100 ms per answer,
tests/fakes/openai_server.py), 32 requests in flight, max 64 tokens, a fresh store / log folder.

inspect_ai is never a dependency: `make bench-inspect` installs it into its own venv
(.venv-inspect) and passes its `inspect` program here.
Prints each tool's wall time and peak memory (max RSS of the process tree's largest process), and
on its last line `ratio_inspect_vs_ours=X.XX` (inspect's wall time over ours; target >= 5). The line
before it, the ceiling, is inspect's time over the latency-bound ideal: no client running the same
requests with as many in flight can beat inspect by more.
Run: .venv/bin/python benchmarks/bench_vs_inspect.py [--inspect .venv-inspect/bin/inspect] [--requests 1000] [--smoke]
Without inspect our run and inspect's task file still happen, then `skipped: inspect_ai not installed`
(`--smoke`: so, at 20 requests, for `make bench-smoke`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import parse, skipped  # noqa: E402
from bench_api import start_server  # noqa: E402 - the same fake server, in its own process

TASK = """
from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.solver import generate


@task
def bench(n: int = 1000):
    return Task(dataset=[Sample(input=f"Benchmark question number {i}?", id=f"b{i:05d}") for i in range(n)],
                solver=generate())
"""


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall seconds and peak RSS (MiB) of one command run to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return wall, peak, proc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--inspect", default=".venv-inspect/bin/inspect", help="the `inspect` program of a venv with inspect_ai"
    )
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--latency", type=float, default=0.1)
    args = parse(ap, requests=20, concurrency=4, latency=0.01)
    found = shutil.which(args.inspect)
    inspect = str(Path(found).resolve()) if found else None  # resolved: it runs from a temp folder

    server, base_url = start_server(args.latency)
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            data = tmp / "bench.jsonl"
            data.write_text(
                "".join(
                    json.dumps(
                        {
                            "id": f"b{i:05d}",
                            "pair_id": f"b{i:05d}",
                            "lang": "en",
                            "text": f"Benchmark question number {i}?",
                            "category": "bench",
                            "kind": "sensitive",
                        }
                    )
                    + "\n"
                    for i in range(args.requests)
                )
            )
            env = {**os.environ, "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": base_url}
            # Ours first: its peak RSS is read before inspect's (getrusage keeps the largest child).
            ours, ours_mb, _ = timed(
                [
                    sys.executable,
                    "-m",
                    "deccp_eval.cli",
                    "run",
                    "-m",
                    "openai:bench-model",
                    "--base-url",
                    base_url,
                    "-d",
                    str(data),
                    "--db",
                    str(tmp / "r" / "deccp.db"),
                    "--max-concurrency",
                    str(args.concurrency),
                    "--max-tokens",
                    "64",
                ],
                env,
                tmp,
            )
            (tmp / "bench_task.py").write_text(TASK)
            print(f"deccp-eval run: {ours:6.2f} s, peak RSS {ours_mb:.0f} MiB", flush=True)
            if inspect is None:
                compile(TASK, "bench_task.py", "exec")
                return skipped(
                    "inspect_ai",
                    f"{args.inspect} not found; `make bench-inspect` installs it into "
                    ".venv-inspect and runs this benchmark",
                )
            theirs, theirs_mb, _ = timed(
                [
                    inspect,
                    "eval",
                    "bench_task.py",
                    "--model",
                    "openai/bench-model",
                    "--model-base-url",
                    base_url,
                    "-T",
                    f"n={args.requests}",
                    "--max-connections",
                    str(args.concurrency),
                    "--max-tokens",
                    "64",
                    "--log-dir",
                    str(tmp / "logs"),
                    "--display",
                    "none",
                ],
                env,
                tmp,
            )
    finally:
        server.terminate()
        server.wait(timeout=10)
    ideal = args.requests / args.concurrency * args.latency
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(
        f"requests={args.requests} concurrency={args.concurrency} latency={args.latency * 1000:.0f}ms "
        f"(latency-bound ideal {ideal:.2f}s)"
    )
    print(f"inspect eval:   {theirs:6.2f} s, peak RSS up to {theirs_mb:.0f} MiB")
    # no client with the same requests in flight finishes before the ideal: the most any could beat inspect by
    print(f"ceiling at equal concurrency: {theirs / ideal:.2f} (inspect's time over the latency-bound ideal)")
    print(f"ratio_inspect_vs_ours={theirs / ours:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
