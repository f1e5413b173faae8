"""Toy-model generation throughput through the HF backend at batch size 1 vs 16.

Prints tokens/s for each and, on the last line, `ratio=X.XX` (batch 16 over batch 1).
Run: .venv/bin/python benchmarks/bench_hf_batching.py [--prompts 64] [--smoke]
"""

from __future__ import annotations

import argparse
import time

from _common import parse, toy_model

from deccp_eval.backends.contract import BackendOptions
from deccp_eval.base.schema import Request, SamplingParams
from deccp_eval.datasets.loading import load_dataset
from deccp_eval.plugins.hf import HFBackend


def throughput(path: str, texts: list[str], batch_size: int, max_tokens: int) -> tuple[float, float]:
    backend = HFBackend(path, BackendOptions(batch_size=batch_size))
    backend.load()
    reqs = [
        Request(model="hf:bench", prompt_id=str(i), text=t, params=SamplingParams(max_tokens=max_tokens))
        for i, t in enumerate(texts)
    ]
    out: list = []
    t0 = time.perf_counter()
    backend.generate(reqs, out.append)
    wall = time.perf_counter() - t0
    tokens = sum(r.tokens_out or 0 for r in out)
    return tokens / wall, wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=32)
    args = parse(ap, prompts=4, max_tokens=4)
    path = str(toy_model())
    texts = [p.text for p in load_dataset("deccp").prompts[: args.prompts]]
    throughput(path, texts[:4], 4, 4)  # warm-up
    tps1, wall1 = throughput(path, texts, 1, args.max_tokens)
    tps16, wall16 = throughput(path, texts, 16, args.max_tokens)
    print(f"prompts={len(texts)} max_tokens={args.max_tokens}")
    print(f"batch_1:  {tps1:8.1f} tokens/s  wall {wall1:6.2f}s")
    print(f"batch_16: {tps16:8.1f} tokens/s  wall {wall16:6.2f}s")
    print(f"ratio={tps16 / tps1:.2f}")


if __name__ == "__main__":
    main()
