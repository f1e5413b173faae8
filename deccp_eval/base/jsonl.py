"""Reading JSONL files the one way: BOM and encoding checked (files.py), blank lines skipped, errors name
the file, the line a person counts and the column."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from deccp_eval.base.errors import DatasetError, validation_problems
from deccp_eval.base.files import parse_json, read_text

M = TypeVar("M", bound=BaseModel)


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number from 1, object) for each non-blank line; DatasetError on bad bytes, bad JSON or a non-object."""
    for lineno, line in enumerate(read_text(Path(path)).split("\n"), start=1):
        if not line.strip():
            continue
        obj = parse_json(line, Path(path), line_offset=lineno - 1)
        if not isinstance(obj, dict):
            raise DatasetError(f"{path}: line {lineno}: expected a JSON object, got {type(obj).__name__}")
        yield lineno, obj


def read_jsonl_as(path: Path, model: type[M]) -> Iterator[M]:
    """Each row of a JSONL file validated as `model`; a bad row is a DatasetError naming its line and
    fields (label files, gold files)."""
    for lineno, obj in read_jsonl(path):
        try:
            yield model.model_validate(obj)
        except ValidationError as exc:
            raise DatasetError(f"{path}: line {lineno}: {validation_problems(exc, quote=True)}") from None
