"""Reading JSONL files the one way: blank lines skipped, errors name the file and the line a person counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from deccp_eval.errors import DatasetError


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number from 1, object) for each non-blank line; DatasetError on bad JSON or a non-object."""
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}: line {lineno}: invalid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise DatasetError(f"{path}: line {lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj
