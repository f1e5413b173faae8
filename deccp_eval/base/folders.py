"""Writing a result folder the one way: into a sibling temp folder, then a rename, so a crash never
leaves a half-written folder that looks like a finished model."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_folder(out: Path, write: Callable[[Path], Any]) -> Path:
    """Call `write(tmp)` on a fresh sibling folder, then replace `out` with it; on any failure the
    temp folder is removed and `out` is left as it was."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
    try:
        write(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
