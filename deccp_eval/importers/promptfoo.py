"""A promptfoo eval results file (`promptfoo eval -o results.json`, results version 2 or 3).

Each `results.results[i]` is one provider's answer to one test: `prompt.raw` is the question as sent,
`provider.label` (else `provider.id`) names the model, `response.output` is the answer, `error` a
failed call. Test `vars` named `id`/`prompt_id`, `pair_id`, `lang`, `category` and `kind` are used
when present. Rows are located as `results[i]` (a JSON file has no line per row).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from deccp_eval.base.errors import DatasetError
from deccp_eval.base.files import parse_json, read_text
from deccp_eval.importers import ImportedAnswer, answer, iter_json_items, validate_row


class Provider(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = ""
    label: str | None = None


class Result(BaseModel):
    model_config = ConfigDict(extra="allow")

    provider: Provider | str
    prompt: dict[str, Any]
    vars: dict[str, Any] = {}
    response: dict[str, Any] | None = None
    error: str | None = None


def read(path: Path) -> Iterator[ImportedAnswer]:
    data = parse_json(read_text(path), path)
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, dict) or "results" not in results:
        raise DatasetError(
            f"{path}: not a promptfoo results file (expected an object with results.results; "
            "write one with `promptfoo eval -o results.json`)"
        )
    stamp = results.get("timestamp") if isinstance(results.get("timestamp"), str) else None
    for where, obj in iter_json_items(results["results"], path, "results"):
        row: Result = validate_row(Result, obj, path, where)
        provider = row.provider if isinstance(row.provider, Provider) else Provider(id=row.provider)
        model = provider.label or provider.id
        text = row.prompt.get("raw")
        if not isinstance(text, str) or not text.strip():
            raise DatasetError(f"{path}: {where}: no prompt.raw (the question as sent)")
        output = (row.response or {}).get("output")
        error = row.error or (row.response or {}).get("error")
        if output is None and not error:
            raise DatasetError(f"{path}: {where}: no response.output and no error")
        if output is not None and not isinstance(output, str):
            output = json.dumps(output, ensure_ascii=False)
        v = row.vars
        yield answer(
            path,
            where=where,
            model=model,
            prompt=text,
            prompt_id=_str(v.get("prompt_id") or v.get("id")),
            pair_id=_str(v.get("pair_id")),
            lang=_str(v.get("lang")),
            category=_str(v.get("category")),
            kind=v.get("kind") if v.get("kind") in ("sensitive", "control") else None,
            response=output or "",
            error=str(error) if error and output is None else None,
            created=stamp,
        )


def _str(value: Any) -> str | None:
    return str(value) if value is not None and str(value).strip() else None
