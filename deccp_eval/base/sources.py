"""The hash of the code that decides something (a judge's verdicts, the degenerate flags): part of a
cache key, so a change to the rules can never keep serving what older rules decided."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import ModuleType


def source_hash(*modules: ModuleType) -> str:
    """sha256 (hex) over the source files of `modules`, in the order given."""
    h = hashlib.sha256()
    for module in modules:
        h.update(Path(module.__file__ or "").read_bytes())
    return h.hexdigest()
