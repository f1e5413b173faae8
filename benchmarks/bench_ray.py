"""Ray executor vs in-process: 2 toy models (hf:deccp-toy, abliterated:deccp-toy) x 256 prompts,
greedy, through the runner into a real SQLite store; first sequentially in this process, then on a
local Ray cluster with 2 single-CPU replicas per model. Both times include loading the models (the
Ray one loads each model once per replica); the cluster's own start-up is printed apart.

Last line: `ratio_ray_vs_local=X.XX` (Ray wall time / local wall time; below 1 is faster).
On 2 shared cores the two replicas share the cores the local run uses, and each loads the model
(about 20-60 s of imports) where the local run loads it once: this measures overhead and thread
contention, not a speed-up; with N GPUs the generation part divides by N (see DEVELOPERS.md).
Run: .venv/bin/python benchmarks/bench_ray.py [--prompts 256 --max-tokens 32 --batch-size 16 --replicas 2]
[--ray-address HOST:PORT] [--smoke]
(`--smoke`: one model, 2 prompts, one replica; the same two executors. `--ray-address`: use a running
cluster, e.g. one with GPUs, instead of starting a local 2-CPU one; the suite passes its shared one.)
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from _common import parse, toy_model

from deccp_eval.backends.contract import BackendOptions
from deccp_eval.base.schema import SamplingParams
from deccp_eval.datasets.loading import load_dataset
from deccp_eval.run import runner
from deccp_eval.run.executors import make_executor
from deccp_eval.store.db import Store

MODELS = ["hf:deccp-toy", "abliterated:deccp-toy"]


def timed_run(
    db: Path, executor_name: str, models: list[str], prompts: int, max_tokens: int, batch_size: int, **kw: object
) -> float:
    data = load_dataset("deccp")
    data = data.model_copy(update={"prompts": data.prompts[:prompts]})
    options = {m: BackendOptions(batch_size=batch_size, device="cpu") for m in models}
    with make_executor(executor_name, **kw) as executor:  # type: ignore[arg-type]
        t0 = time.perf_counter()
        with Store(db) as store:
            summary = runner.run(
                store, data, models, [], SamplingParams(max_tokens=max_tokens), options=options, executor=executor
            )
        wall = time.perf_counter() - t0
    assert [m.generated for m in summary.models] == [prompts] * len(models), summary
    return wall


def texts(db: Path) -> dict[str, str]:
    con = sqlite3.connect(db)
    try:
        return dict(con.execute("SELECT key, text FROM responses"))
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--models", type=lambda v: v.split(","), default=MODELS, help="comma-separated model specs")
    ap.add_argument("--replicas", type=int, default=2, help="single-CPU replicas per model on Ray")
    ap.add_argument("--ray-address", default=None, help="a running cluster to use (default: start a local one)")
    args = parse(ap, prompts=2, max_tokens=4, batch_size=2, models=MODELS[:1], replicas=1)
    import ray

    toy_model()
    runner_args = (args.models, args.prompts, args.max_tokens, args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        local_db, ray_db = Path(tmp) / "local.db", Path(tmp) / "ray.db"
        local = timed_run(local_db, "local", *runner_args)
        print(f"local sequential: {local:.1f}s for {len(args.models)} models x {args.prompts} prompts", flush=True)
        t0 = time.perf_counter()
        if args.ray_address:
            ray.init(address=args.ray_address, log_to_driver=False)
        else:
            ray.init(
                address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1"
            )
        print(
            f"ray cluster {'join' if args.ray_address else 'start'}: {time.perf_counter() - t0:.1f}s (not counted)",
            flush=True,
        )
        try:
            on_ray = timed_run(ray_db, "ray", *runner_args, replicas=args.replicas, gpus_per_replica=0)
        finally:
            ray.shutdown()
        print(f"ray, {args.replicas} single-CPU replicas per model: {on_ray:.1f}s", flush=True)
        same = texts(local_db) == texts(ray_db)
        print(f"stored answers identical: {same}")
    print(f"ratio_ray_vs_local={on_ray / local:.2f}")


if __name__ == "__main__":
    main()
