"""Toy-model generation throughput: vLLM (LLM.chat over the whole list) vs HF batched generate.

Engine load time is excluded from both; each backend generates the same prompts greedily.
Last line: `ratio_vllm_vs_hf=X.XX` (tokens/s of vLLM over tokens/s of HF).
Run: .venv/bin/python benchmarks/bench_vllm.py [--prompts 256] [--model deccp-toy] [--hf-batch 32] [--smoke]
(`--smoke`: 4 prompts, 4 tokens; the engine still starts, in this process, about 25 s on 2 cores.)
"""

from __future__ import annotations

import argparse
import os
import time

from _common import parse, toy_model


def run(backend, reqs) -> tuple[float, float, int]:
    out: list = []
    t0 = time.perf_counter()
    backend.generate(reqs, out.append)
    wall = time.perf_counter() - t0
    tokens = sum(r.tokens_out or 0 for r in out)
    return tokens / wall, wall, tokens


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--hf-batch", type=int, default=32)
    ap.add_argument("--model", default="deccp-toy")
    args = parse(ap, prompts=4, max_tokens=4, hf_batch=4)
    if args.smoke:  # the engine in this process: half the start-up; tests/test_vllm_backend.py starts it for real
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    if args.model == "deccp-toy":
        toy_model()

    from deccp_eval.backends.contract import BackendOptions
    from deccp_eval.base.schema import Request, SamplingParams
    from deccp_eval.datasets.loading import load_dataset
    from deccp_eval.plugins.hf import HFBackend
    from deccp_eval.plugins.vllm import VLLMBackend

    prompts = load_dataset("deccp").prompts
    texts = [prompts[i % len(prompts)].text for i in range(args.prompts)]
    reqs = [
        Request(model="bench", prompt_id=str(i), text=t, params=SamplingParams(max_tokens=args.max_tokens))
        for i, t in enumerate(texts)
    ]

    hf = HFBackend(args.model, BackendOptions(batch_size=args.hf_batch))
    hf.load()
    run(hf, reqs[:8])  # warm-up
    hf_tps, hf_wall, hf_tokens = run(hf, reqs)
    hf.close()

    vl = VLLMBackend(args.model, BackendOptions(extra={"max_model_len": 512}))
    t0 = time.perf_counter()
    vl.load()
    load_s = time.perf_counter() - t0
    run(vl, reqs[:8])
    vl_tps, vl_wall, vl_tokens = run(vl, reqs)
    vl.close()

    print(f"prompts={len(reqs)} max_tokens={args.max_tokens} model={args.model}")
    print(f"hf   (batch {args.hf_batch}): {hf_tps:9.1f} tokens/s  {hf_tokens} tokens in {hf_wall:6.2f}s")
    print(
        f"vllm (whole list): {vl_tps:9.1f} tokens/s  {vl_tokens} tokens in {vl_wall:6.2f}s  (engine load {load_s:.1f}s)"
    )
    print(f"ratio_vllm_vs_hf={vl_tps / hf_tps:.2f}")


if __name__ == "__main__":
    main()
