"""Reading user files: UTF-8 (a byte-order mark is fine), with errors that name the file, line and
byte offset, or line and column, instead of a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deccp_eval.base.errors import DatasetError

BOM = "\ufeff"


def read_text(path: Path) -> str:
    """The file's text; DatasetError for unreadable or non-UTF-8 files (with line and byte offset)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DatasetError(
            f"{path}: line {line}: not UTF-8 (byte offset {exc.start}: 0x{data[exc.start]:02x}); save the file as UTF-8"
        ) from None
    return text[1:] if text.startswith(BOM) else text


def parse_json(text: str, path: Path, line_offset: int = 0) -> Any:
    """json.loads with the file, line and column of a syntax error."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{path}: line {exc.lineno + line_offset}, column {exc.colno}: invalid JSON ({exc.msg})"
        ) from None
    except RecursionError:
        raise DatasetError(f"{path}: line {1 + line_offset}: JSON nested too deeply") from None
