"""The benchmarks' smoke run stays wired: every script takes `--smoke` through benchmarks/_common.py and
`make test` runs `make bench-smoke` (which runs them; these checks only keep the wiring in place)."""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


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


def test_make_test_runs_the_bench_smoke_target() -> None:
    makefile = (ROOT / "Makefile").read_text()
    test_line = re.search(r"^test:(.*)$", makefile, re.M)
    assert test_line and "bench-smoke" in test_line.group(1).split()
    assert re.search(r"^bench-smoke:", makefile, re.M)


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
