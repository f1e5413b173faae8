"""SpeechMap answers (github.com/xlr8harder/speechmap-data): its response rows (`responses/*.jsonl`,
`analysis/*.jsonl`) and the flattened copy shipped in `data/speechmap/`.

Raw rows: `question_id`, `question`, `category` (a `zh_` prefix is Chinese), `model`,
`response.choices[0].message.content` and `.reasoning`, `provider`, `timestamp`, and in `analysis/`
SpeechMap's verdict `compliance` by `judge_model`. Flattened rows: `question_id`, `prompt`,
`response` (a string), `lang`, `model`, `judges` ({grok, gpt4o}: its two LLM judges' labels, ours
already). `china_criticism_NN` and `zh_china_criticism_NN` share the pair id `china_criticism_NN`.
SpeechMap's verdicts become judgments of judges named `speechmap:JUDGE_MODEL`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from deccp_eval.base.errors import DatasetError
from deccp_eval.base.jsonl import read_jsonl
from deccp_eval.importers import ImportedAnswer, answer, validate_row

# SpeechMap's compliance labels in our classes (its EVASIVE covers our evasive and state_aligned).
COMPLIANCE = {"COMPLETE": "answer", "DENIAL": "refusal", "EVASIVE": "evasive"}
# The flattened file's judge keys -> the model SpeechMap judged with (data/speechmap/README.md).
JUDGE_MODELS = {"grok": "x-ai/grok-4.1-fast", "gpt4o": "openai/gpt-4o-2024-11-20"}


class RawRow(BaseModel):
    model_config = ConfigDict(extra="allow")

    question_id: str = Field(min_length=1)
    model: str = Field(min_length=1)
    question: str | None = None
    prompt: str | None = None
    category: str = ""
    response: dict[str, Any] | str | None = None
    lang: str | None = None
    provider: str | None = None
    timestamp: str | None = None
    compliance: str | None = None
    judge_model: str | None = None
    judges: dict[str, str] | None = None


def read(path: Path) -> Iterator[ImportedAnswer]:
    for lineno, obj in read_jsonl(path):
        where = f"line {lineno}"
        row: RawRow = validate_row(RawRow, obj, path, where)
        zh = row.lang == "zh" or row.category.startswith("zh_") or row.question_id.startswith("zh_")
        pair_id = row.question_id.removeprefix("zh_")
        text, reasoning, finish, error = _message(row.response)
        if text is None and error is None:
            raise _bad(
                path, where, "no response text (expected response.choices[0].message.content or a string `response`)"
            )
        question = row.question or row.prompt
        if not question:
            raise _bad(path, where, "no question text (`question` or `prompt`)")
        verdicts: dict[str, str] = {}
        if row.compliance in COMPLIANCE:
            verdicts[f"speechmap:{row.judge_model or 'judge'}"] = COMPLIANCE[row.compliance]
        for key, label in (row.judges or {}).items():
            verdicts[f"speechmap:{JUDGE_MODELS.get(key, key)}"] = COMPLIANCE.get(label, label)
        yield answer(
            path,
            where=where,
            model=row.model,
            prompt=question,
            lang="zh" if zh else "en",
            prompt_id=("zh_" if zh else "") + pair_id,
            pair_id=pair_id,
            category=row.category.removeprefix("zh_") or None,
            response=text or "",
            reasoning=reasoning,
            finish_reason=finish,
            error=error,
            created=row.timestamp,
            provider=row.provider,
            verdicts=verdicts,
        )


def _message(response: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """(content, reasoning, finish_reason, error) of a stored API response or a plain string."""
    if isinstance(response, str):
        return response, None, None, None
    if not isinstance(response, dict):
        return None, None, None, None
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        err = response.get("error")
        return None, None, None, (str(err.get("message", err)) if isinstance(err, dict) else str(err)) if err else None
    message = choices[0].get("message") or {}
    content = message.get("content")
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    reasoning = message.get("reasoning") or message.get("reasoning_content")
    return (
        (content if isinstance(content, str) else ""),
        (reasoning if isinstance(reasoning, str) else None),
        choices[0].get("finish_reason"),
        None,
    )


def _bad(path: Path, where: str, what: str) -> DatasetError:
    return DatasetError(f"{path}: {where}: {what}")
