"""An inspect_ai eval log: `.json` (read here), or `.eval` (a zstd zip read through inspect_ai's own
reader when it is installed; otherwise convert it: `inspect log convert --to json`).

Each sample's `input` (a string, or chat messages whose last user message is the question), its
`output.choices[0].message` (content as a string or content parts: `text` and `reasoning`), the
log's `eval.model`; sample `metadata` fields `lang`, `pair_id`, `category`, `kind`, and the sample id.
Samples are located as `samples[i]`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from deccp_eval.base.errors import DatasetError, MissingDependency
from deccp_eval.base.files import parse_json, read_text
from deccp_eval.importers import ImportedAnswer, answer, iter_json_items, validate_row


class Sample(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | int | None = None
    epoch: int = 1
    input: str | list[dict[str, Any]]
    output: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    error: dict[str, Any] | str | None = None


def _load(path: Path) -> dict[str, Any]:
    if path.suffix.lower() != ".eval":
        data = parse_json(read_text(path), path)
        if not isinstance(data, dict):
            raise DatasetError(f"{path}: not an inspect_ai log (expected a JSON object with eval and samples)")
        return data
    try:
        from inspect_ai.log import read_eval_log
    except ImportError:
        raise MissingDependency("inspect-ai", "inspect", f"{path}: reading an .eval log") from None
    try:
        return read_eval_log(str(path)).model_dump(mode="json", exclude_none=True)
    except Exception as exc:  # inspect_ai's reader raises its own types for a damaged zip
        raise DatasetError(f"{path}: not a readable inspect_ai .eval log ({type(exc).__name__}: {exc})") from None


def read(path: Path) -> Iterator[ImportedAnswer]:
    data = _load(path)
    ev = data.get("eval")
    if not isinstance(ev, dict) or "samples" not in data:
        raise DatasetError(
            f"{path}: not an inspect_ai log with samples (expected eval and samples; a log "
            "written with --no-log-samples has none)"
        )
    model = str(ev.get("model") or "")
    for where, obj in iter_json_items(data["samples"], path, "samples"):
        s: Sample = validate_row(Sample, obj, path, where)
        question = s.input if isinstance(s.input, str) else _last_user(s.input)
        if not question:
            raise DatasetError(f"{path}: {where}: no question in input")
        text, reasoning, finish = _output(s.output)
        error = None
        if s.error:
            error = str(s.error.get("message", s.error)) if isinstance(s.error, dict) else str(s.error)
        elif text is None:
            raise DatasetError(f"{path}: {where}: no output.choices[0].message")
        meta = s.metadata or {}
        sid = None if s.id is None else str(s.id) + (f"#{s.epoch}" if s.epoch > 1 else "")
        yield answer(
            path,
            where=where,
            model=str((s.output or {}).get("model") or model),
            prompt=question,
            prompt_id=str(meta.get("prompt_id") or sid) if (meta.get("prompt_id") or sid) else None,
            lang=meta.get("lang"),
            pair_id=meta.get("pair_id"),
            category=meta.get("category"),
            kind=meta.get("kind") if meta.get("kind") in ("sensitive", "control") else None,
            response=text or "",
            reasoning=reasoning,
            finish_reason=finish,
            error=error,
            created=ev.get("created"),
        )


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _last_user(messages: list[dict[str, Any]]) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    return _text(users[-1].get("content")).strip() if users else ""


def _output(output: dict[str, Any] | None) -> tuple[str | None, str | None, str | None]:
    """(answer text, reasoning, stop reason) of a sample's output."""
    choices = (output or {}).get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None, None, None
    content = (choices[0].get("message") or {}).get("content")
    reasoning = None
    if isinstance(content, list):
        parts = [p.get("reasoning", "") for p in content if isinstance(p, dict) and p.get("type") == "reasoning"]
        reasoning = "\n\n".join(p for p in parts if p) or None
    return _text(content), reasoning, choices[0].get("stop_reason")
