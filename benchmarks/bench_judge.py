"""Judge speed on real, long answers: the default (trained) judge against the keyword rule judge.

Scores every answer of the shipped SpeechMap dev set (1,818 real answers, median about 1,800
characters) on one core and prints answers per second for each judge and their ratio. Both judges
see the same items, reasoning already split off (as in a run).

    .venv/bin/python benchmarks/bench_judge.py [--limit N] [--keyword-limit N] [--smoke]
    # last lines: cpu_answers_per_s=X (steadier on a busy machine), answers_per_s=X (wall), ratio_to_keyword=Y,
    # ratio_to_verdicts_only=Z (the same model's verdicts without rationales: what the rationales cost)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from _common import parse

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the goal is stated
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

DEV = Path(__file__).resolve().parent.parent / "data" / "speechmap" / "speechmap_china_dev.jsonl"


def rate(spec: str, items: list) -> tuple[float, float]:
    """(answers per wall second, answers per CPU second of this process: steadier on a busy machine)."""
    from deccp_eval.judging.contract import judge_answers, make_judge

    judge = make_judge(spec)
    judge.check()
    if hasattr(judge, "model"):
        judge.model()  # loading is not judging
    got: list = []
    t0, c0 = time.perf_counter(), time.process_time()
    judge_answers(judge, items, got.append)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert len(got) == len(items), (spec, len(got), len(items))
    return len(items) / elapsed, len(items) / cpu


def verdicts_only_rate(items: list) -> float:
    """Answers per CPU second of the default model's verdicts alone (`predict`, no rationale): the baseline
    that shows what quoting the reply in every rationale costs."""
    from deccp_eval.base.schema import DEFAULT_JUDGE
    from deccp_eval.judging.contract import make_judge

    model = make_judge(DEFAULT_JUDGE).model()  # type: ignore[attr-defined]
    c0 = time.process_time()
    for item in items:
        model.predict(item.response, item.prompt)
    return len(items) / (time.process_time() - c0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0, help="answers for the default judge (0: all)")
    ap.add_argument("--keyword-limit", type=int, default=300, help="answers for the slower keyword baseline")
    args = parse(ap, limit=20, keyword_limit=10)
    from deccp_eval.base.schema import DEFAULT_JUDGE
    from deccp_eval.judging.contract import JudgeItem

    rows = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines()]
    items = [JudgeItem(response_key=r["id"], prompt=r["prompt"], response=r["response"], lang=r["lang"]) for r in rows]
    ours = items[: args.limit] if args.limit else items
    chars = sum(len(i.response) for i in ours) / len(ours)
    t0 = time.perf_counter()
    from deccp_eval.judging.contract import make_judge

    make_judge(DEFAULT_JUDGE).model()  # type: ignore[attr-defined]
    print(f"load_s={time.perf_counter() - t0:.3f}")
    fast, fast_cpu = rate(DEFAULT_JUDGE, ours)
    bare_cpu = verdicts_only_rate(ours)
    slow, _ = rate("keyword", items[: args.keyword_limit])
    print(f"{len(ours)} answers, mean {chars:.0f} characters after reasoning is split off")
    print(f"keyword_answers_per_s={slow:.1f}")
    print(f"cpu_answers_per_s={fast_cpu:.1f}")
    print(f"answers_per_s={fast:.1f}")
    print(f"verdicts_only_cpu_answers_per_s={bare_cpu:.1f}")
    print(f"ratio_to_keyword={fast / slow:.1f}")
    print(f"ratio_to_verdicts_only={fast_cpu / bare_cpu:.2f}")


if __name__ == "__main__":
    main()
