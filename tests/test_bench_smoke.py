"""Every benchmark script runs at its tiny `--smoke` size inside the suite, so a benchmark whose imports or
calls rot fails `make test` (no timing is asserted: the numbers mean nothing at that size). Each script is
its own test, so the xdist workers share them out; the ones that start vLLM or a Ray cluster go with the
engine tests (tests/conftest.py). `make bench-smoke` runs the same scripts one after another outside pytest."""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if not p.name.startswith("_"))
REAL_MODEL_SCRIPTS = {"bench_smollm2.py"}  # needs the SmolLM2 GGUF the `smollm2` fixture fetches
RAY_SCRIPT = "bench_ray.py"  # joins the shared Ray cluster (tests/conftest.py keeps it up around this test)


def load_common():
    spec = importlib.util.spec_from_file_location("bench_common", BENCH / "_common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_benchmark_script_parses_its_options_with_the_smoke_flag() -> None:
    scripts = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))
    assert len(scripts) >= 13
    missing = [p.name for p in scripts if not re.search(r"^\s+args = parse\(ap\b", p.read_text(), re.M)]
    assert not missing, f"these parse their options without _common.parse (no --smoke): {missing}"


def test_the_makefile_runs_every_script_in_bench_smoke() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^bench-smoke:", makefile, re.M)
    assert "$(wildcard benchmarks/*.py)" in makefile


@pytest.mark.parametrize(
    "script", [pytest.param(s, marks=pytest.mark.realmodel) if s in REAL_MODEL_SCRIPTS else s for s in SCRIPTS]
)
def test_benchmark_runs_at_smoke_size(script: str, toy_path: Path, request: pytest.FixtureRequest) -> None:
    """The script exits 0 and prints its result lines (or `skipped:` for an absent outside tool);
    `toy_path` builds the shared toy first, under the lock the scripts take too."""
    if script in REAL_MODEL_SCRIPTS:
        request.getfixturevalue("smollm2")
    # the Ray benchmark joins the suite's shared cluster: a start of its own costs ~8 s of the engines' worker
    extra = ["--ray-address", request.getfixturevalue("cluster")] if script == RAY_SCRIPT else []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--smoke", *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"{script} --smoke failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-4000:]}"
    )
    assert proc.stdout.strip(), f"{script} --smoke printed nothing"


def test_smoke_sizes_apply_only_where_the_command_line_left_the_default() -> None:
    parse = load_common().parse

    def parser() -> argparse.ArgumentParser:
        ap = argparse.ArgumentParser()
        ap.add_argument("--requests", type=int, default=1000)
        ap.add_argument("--latency", type=float, default=0.1)
        return ap

    full = parse(parser(), [], requests=10, latency=0.01)
    assert (full.smoke, full.requests, full.latency) == (False, 1000, 0.1)
    tiny = parse(parser(), ["--smoke", "--requests", "50"], requests=10, latency=0.01)
    assert (tiny.smoke, tiny.requests, tiny.latency) == (True, 50, 0.01)
