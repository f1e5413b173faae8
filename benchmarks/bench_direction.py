"""Time and peak memory of the refusal-direction pass on the toy model, for 128, 512 and 2048 prompts.

Each count runs in a fresh subprocess, so one run's allocations cannot hide another's. Memory is
resident set size (RSS), sampled every 2 ms by a thread during the pass, minus the RSS just before
it (after a warm-up batch, so lazy initialisation and allocator pools are already paid for): what
the pass itself adds. RSS, not tracemalloc, because torch's tensors live outside Python's
allocator; tracemalloc's peak is printed too, for the Python-side objects (token lists, strings).
The prompt list is the first 128 built-in sensitive prompts repeated to the count, so every run
sees the same batch shapes and only the number of batches changes; the list itself (a few hundred
KB of strings at 2048) is built before the measurement starts. Deltas under 1 MB are allocator
noise, so the ratio uses max(delta, 1 MB); the raw deltas are in the table.

Flat memory means the ratio printed last stays near 1: the pass keeps float64 running sums
(layers x hidden), never the activations.

    .venv/bin/python benchmarks/bench_direction.py [--counts 128,512,2048] [--smoke]
    # last line: mem_ratio_2048_vs_128=X.XX (the largest count vs the smallest)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

from _common import parse, toy_model

COUNTS = (128, 512, 2048)
BATCH = 32


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(count: int, base_count: int = COUNTS[0], batch: int = BATCH) -> dict[str, float]:
    import tracemalloc

    import torch

    from deccp_eval.backends.torch_utils import load_model
    from deccp_eval.datasets.loading import load_dataset
    from deccp_eval.training.abliteration.direction import residual_means

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    model, tokenizer = load_model(str(toy_model()), device="cpu")
    base = [p.text for p in load_dataset("deccp").prompts if p.kind == "sensitive"][:base_count]
    prompts = (base * (count // len(base) + 1))[:count]  # same batches repeated: only the count changes
    residual_means(model, tokenizer, prompts[:batch], batch_size=batch)  # warm-up
    before = _rss_bytes()
    peak = [before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    tracemalloc.start()
    sampler.start()
    t0 = time.perf_counter()
    means, n = residual_means(model, tokenizer, prompts, batch_size=batch)
    seconds = time.perf_counter() - t0
    stop.set()
    sampler.join()
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak[0] = max(peak[0], _rss_bytes())
    assert n == count and tuple(means.shape)[0] == len(model.model.layers) + 1
    return {
        "count": count,
        "seconds": seconds,
        "rss_before_mb": before / 2**20,
        "rss_delta_mb": (peak[0] - before) / 2**20,
        "tracemalloc_peak_mb": py_peak / 2**20,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--counts",
        type=lambda v: [int(x) for x in v.split(",")],
        default=list(COUNTS),
        help="prompt counts, comma-separated (default 128,512,2048)",
    )
    ap.add_argument("--batch-size", type=int, default=BATCH)
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # one count, in this process
    args = parse(ap, counts=[8, 16], batch_size=4)
    if args.one is not None:
        print(json.dumps(measure(args.one, args.counts[0], args.batch_size)))
        return
    toy_model()  # trained once here (under the tests' lock), not in each child
    rows = []
    for count in args.counts:
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                str(count),
                "--counts",
                str(args.counts[0]),
                "--batch-size",
                str(args.batch_size),
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-4000:])
            raise SystemExit(f"the {count}-prompt run failed (exit {proc.returncode})")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(
        f"{'prompts':>8} {'seconds':>8} {'prompts/s':>10} {'rss before MB':>14} {'rss delta MB':>13} "
        f"{'tracemalloc MB':>15}"
    )
    for r in rows:
        print(
            f"{r['count']:>8} {r['seconds']:>8.2f} {r['count'] / r['seconds']:>10.1f} {r['rss_before_mb']:>14.1f} "
            f"{r['rss_delta_mb']:>13.2f} {r['tracemalloc_peak_mb']:>15.2f}"
        )
    first, last = rows[0], rows[-1]
    floor = 1.0  # MB: below this the delta is allocator noise, not growth
    ratio = max(last["rss_delta_mb"], floor) / max(first["rss_delta_mb"], floor)
    times = last["count"] // first["count"]
    print(f"time_ratio_{last['count']}_vs_{first['count']}={last['seconds'] / first['seconds']:.2f} (prompts x{times})")
    print(f"mem_ratio_{last['count']}_vs_{first['count']}={ratio:.2f}")


if __name__ == "__main__":
    main()
