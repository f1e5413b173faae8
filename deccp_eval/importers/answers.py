"""`--format jsonl`: one answer per line, for harnesses without an importer of their own.

Fields: `model`, `prompt` (the question's text) or `prompt_id` (a prompt of the registered dataset
given with --dataset), `response`; optional `reasoning`, `lang`, `pair_id`, `category`, `kind`,
`created`, `provider`, `finish_reason`, `error`. Other fields are ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from deccp_eval.base.jsonl import read_jsonl
from deccp_eval.importers import ImportedAnswer, answer, validate_row


class Row(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    prompt: str | None = None
    prompt_id: str | None = None
    response: str | None = None
    reasoning: str | None = None
    lang: str | None = None
    pair_id: str | None = None
    category: str | None = None
    kind: Literal["sensitive", "control"] | None = None
    created: str | None = None
    provider: str | None = None
    finish_reason: str | None = None
    error: str | None = None

    @model_validator(mode="after")
    def _needs(self) -> Row:
        if not (self.prompt or self.prompt_id):
            raise ValueError("needs `prompt` (the question's text) or `prompt_id`")
        if self.response is None and self.error is None:
            raise ValueError("needs `response` (or `error`)")
        return self


def read(path: Path) -> Iterator[ImportedAnswer]:
    for lineno, obj in read_jsonl(path):
        where = f"line {lineno}"
        row: Row = validate_row(Row, obj, path, where)
        yield answer(
            path,
            where=where,
            model=row.model,
            prompt=row.prompt,
            prompt_id=row.prompt_id,
            lang=row.lang,
            pair_id=row.pair_id,
            category=row.category,
            kind=row.kind,
            response=row.response or "",
            reasoning=row.reasoning,
            finish_reason=row.finish_reason,
            error=row.error,
            created=row.created,
            provider=row.provider,
        )
