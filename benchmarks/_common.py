"""What the benchmark scripts share: the `--smoke` flag, the toy model, and the line a smoke run prints
when an optional outside tool is absent.

`--smoke` runs a script at a tiny size through the same code paths and prints the same result lines
(the numbers mean nothing at that size). `make bench-smoke` runs every script in this folder so, and the
suite runs each as a test (tests/test_bench_smoke.py), so a benchmark whose imports or calls have rotted
fails the build. A tool that is
not a dependency (heretic, inspect_ai, the SmolLM2 GGUF) is checked for only at the point of calling
it: everything before runs, then `skipped: X not installed` and exit 0. An error in the project's own
code is never caught here, so it fails the run.
"""

from __future__ import annotations

import argparse
import fcntl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import deccp_eval  # noqa: F401  first: it sets OMP_WAIT_POLICY=PASSIVE before any script imports torch

ROOT = Path(__file__).resolve().parents[1]


def parse(ap: argparse.ArgumentParser, argv: Sequence[str] | None = None, **tiny: Any) -> argparse.Namespace:
    """Parse with a `--smoke` flag added: with it, each option named in `tiny` that the command line
    left at its default takes its tiny value (`args.smoke` says whether it was given)."""
    sizes = " ".join(
        f"--{k.replace('_', '-')} {','.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
        for k, v in tiny.items()
    )
    ap.add_argument(
        "--smoke",
        action="store_true",
        help=f"a tiny run through the same code paths, for `make bench-smoke` ({sizes or 'as is'})",
    )
    args = ap.parse_args(argv)
    if args.smoke:
        for key, value in tiny.items():
            if getattr(args, key) == ap.get_default(key):
                setattr(args, key, value)
    return args


def toy_model() -> Path:
    """The toy model folder the tests use (DECCP_EVAL_CACHE, default ~/.cache/deccp-eval, /toy-vN),
    trained on first use (about a minute on 2 cores) under the lock tests/conftest.py takes, so a
    concurrent test run never trains it twice into the same folder."""
    from deccp_eval.toy import model as toy

    lock_path = toy.cache_dir().parent / f".{toy.cache_dir().name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return toy.build(verbose=False)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def skipped(what: str, how: str, state: str = "not installed") -> int:
    """The line for an optional outside tool that is absent; the exit status to return (0)."""
    print(f"skipped: {what} {state} ({how})", flush=True)
    return 0
