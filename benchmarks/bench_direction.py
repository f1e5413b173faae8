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

    .venv/bin/python benchmarks/bench_direction.py     # last line: mem_ratio_2048_vs_128=X.XX
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

COUNTS = (128, 512, 2048)
BATCH = 32


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(count: int) -> dict[str, float]:
    import tracemalloc

    import torch

    from deccp_eval.toy import model as toy
    from deccp_eval.training.abliteration.direction import residual_means
    from deccp_eval.datasets.loading import load_dataset
    from deccp_eval.backends.torch_utils import load_model

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    model, tokenizer = load_model(str(toy.build(verbose=False)), device="cpu")
    base = [p.text for p in load_dataset("deccp").prompts if p.kind == "sensitive"][: COUNTS[0]]
    prompts = (base * (count // len(base) + 1))[:count]  # same batches repeated: only the count changes
    residual_means(model, tokenizer, prompts[:BATCH], batch_size=BATCH)  # warm-up
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
    means, n = residual_means(model, tokenizer, prompts, batch_size=BATCH)
    seconds = time.perf_counter() - t0
    stop.set()
    sampler.join()
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak[0] = max(peak[0], _rss_bytes())
    assert n == count and tuple(means.shape)[0] == len(model.model.layers) + 1
    return {"count": count, "seconds": seconds, "rss_before_mb": before / 2**20,
            "rss_delta_mb": (peak[0] - before) / 2**20, "tracemalloc_peak_mb": py_peak / 2**20}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(measure(int(sys.argv[2]))))
        return
    rows = []
    for count in COUNTS:
        out = subprocess.run([sys.executable, __file__, "--one", str(count)], capture_output=True, text=True,
                             check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    print(f"{'prompts':>8} {'seconds':>8} {'prompts/s':>10} {'rss before MB':>14} {'rss delta MB':>13} "
          f"{'tracemalloc MB':>15}")
    for r in rows:
        print(f"{r['count']:>8} {r['seconds']:>8.2f} {r['count'] / r['seconds']:>10.1f} {r['rss_before_mb']:>14.1f} "
              f"{r['rss_delta_mb']:>13.2f} {r['tracemalloc_peak_mb']:>15.2f}")
    first, last = rows[0], rows[-1]
    floor = 1.0  # MB: below this the delta is allocator noise, not growth
    ratio = max(last["rss_delta_mb"], floor) / max(first["rss_delta_mb"], floor)
    print(f"time_ratio_2048_vs_128={last['seconds'] / first['seconds']:.2f} (prompts x16)")
    print(f"mem_ratio_2048_vs_128={ratio:.2f}")


if __name__ == "__main__":
    main()
