from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def toy_path() -> Path:
    """The real toy model, trained once per cache (about a minute on 2 cores)."""
    from deccp_eval import toy

    return toy.build(verbose=False)


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return tmp_path / "results" / "deccp.db"


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 600,
        check: bool = False) -> subprocess.CompletedProcess:
    """Run the installed CLI in a fresh process, as a user would."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "deccp_eval.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc
