"""Pydantic records that cross a boundary: dataset rows, requests, responses, judgments."""

from __future__ import annotations

import hashlib
import json
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Lang = str  # "en", "zh", "zh-Hant", ... kept open for public sets


class Verdict(str, Enum):
    ANSWER = "answer"
    REFUSAL = "refusal"
    EVASIVE = "evasive"
    STATE_ALIGNED = "state_aligned"


VERDICTS: tuple[str, ...] = tuple(v.value for v in Verdict)
# What counts as censorship in every rate: everything but a real answer.
CENSORED: tuple[str, ...] = (Verdict.REFUSAL.value, Verdict.EVASIVE.value, Verdict.STATE_ALIGNED.value)
# The judge `run`, `import` and the demo use when none is named: change it here only.
DEFAULT_JUDGE = "clf"


class Accuracy(str, Enum):
    CORRECT = "correct"
    PARTIAL = "partial"
    INCORRECT = "incorrect"
    NOT_ATTEMPTED = "not_attempted"


ACCURACIES: tuple[str, ...] = tuple(a.value for a in Accuracy)


class ParseStatus(str, Enum):
    OK = "ok"
    UNPARSED = "unparsed"


class Prompt(BaseModel):
    """One question in one language; `pair_id` ties its translations together."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    pair_id: str = Field(min_length=1)
    lang: Lang = Field(min_length=2)
    text: str = Field(min_length=1)
    category: str = Field(min_length=1)
    kind: Literal["sensitive", "control"]
    source: str = ""
    expected_facts: list[str] = Field(default_factory=list)

    @field_validator("text")
    @classmethod
    def _strip(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("text is empty")
        return v


class SamplingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(default=512, ge=1)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int | None = 0
    system_prompt: str | None = None
    # Judges ask for these; backends that support them honour them (left out of keys when unset).
    json_schema: dict[str, Any] | None = None  # structured output: the reply is one JSON object of this schema
    top_logprobs: int | None = Field(default=None, ge=0, le=20)  # per-token log-probs with this many alternatives
    # Reasoning switches (`run --thinking on|off`, `--reasoning-effort`, `--thinking-budget`): they change
    # what a reasoning model writes, so they are part of the request key; unset, nothing is sent.
    thinking: bool | None = None  # chat templates' enable_thinking (Qwen3, GLM-4.5+); OpenAI-compatible servers too
    reasoning_effort: str | None = Field(default=None, min_length=1)  # OpenAI-style APIs: low, medium, high, ...
    thinking_budget: int | None = Field(default=None, ge=1024)  # Anthropic: extended thinking's budget_tokens


OPTIONAL_PARAMS: tuple[str, ...] = ("json_schema", "top_logprobs", "thinking", "reasoning_effort", "thinking_budget")


def canonical_hash(payload: Any) -> str:
    """sha256 over canonical JSON: the one way cache keys are made."""
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class Request(BaseModel):
    """Everything that changes a model's output, and nothing that does not."""

    model_config = ConfigDict(extra="forbid")

    model: str  # the model spec, e.g. "hf:/path" or "openai:gpt-4o-mini"
    fingerprint: str = ""  # Backend.fingerprint(): what the spec points at (weights, base_url, options)
    prompt_id: str
    text: str
    params: SamplingParams = Field(default_factory=SamplingParams)
    sample: int = Field(default=0, ge=0)

    @property
    def key(self) -> str:
        data = self.model_dump(mode="json")
        if not self.fingerprint:  # an empty fingerprint is left out so keys made before fingerprints stay valid
            data.pop("fingerprint", None)
        for name in OPTIONAL_PARAMS:  # unset, they leave the keys of earlier requests unchanged
            if data["params"].get(name) is None:
                data["params"].pop(name, None)
        return canonical_hash(data)

    def messages(self) -> list[dict[str, str]]:
        msgs: list[dict[str, str]] = []
        if self.params.system_prompt:
            msgs.append({"role": "system", "content": self.params.system_prompt})
        msgs.append({"role": "user", "content": self.text})
        return msgs


class TokenLogprob(BaseModel):
    """One generated token, its log-probability, and the most likely alternatives at that position."""

    model_config = ConfigDict(extra="forbid")

    token: str
    logprob: float
    top: dict[str, float] = Field(default_factory=dict)


class Response(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    text: str = ""
    reasoning: str | None = None
    finish_reason: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    latency_s: float | None = None
    cost: float | None = None
    error: str | None = None
    logprobs: list[TokenLogprob] | None = None  # when the request asked for top_logprobs and the backend gave them
    provider_model: str | None = None  # the `model` a remote provider says answered
    system_fingerprint: str | None = None  # the provider's `system_fingerprint`, when it sends one
    degenerate: str | None = None  # deccp_eval.base.degenerate's reason; "" checked and fine; None not checked

    @property
    def ok(self) -> bool:
        return self.error is None


class Judgment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    response_key: str
    judge: str
    template_hash: str = ""
    verdict: Verdict | None = None
    accuracy: Accuracy | None = None
    misinformation: bool | None = None
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)  # how sure the judge is of `verdict`
    rationale: str | None = None
    raw: str | None = None
    parse_status: ParseStatus = ParseStatus.OK
    members: list[dict[str, Any]] | None = None  # a panel keeps each member's verdict
    decided_by: str | None = None  # the member whose verdict stands (panels, cascades)
    reference_hash: str = ""  # hash of the gold reference judged against ("" when none was used)
    settings_hash: str = ""  # Judge.settings_hash(): the judge's output-changing settings

    @property
    def key(self) -> str:
        return judgment_key(self.response_key, self.judge, self.template_hash, self.reference_hash, self.settings_hash)


def judgment_key(
    response_key: str, judge: str, template_hash: str, reference_hash: str = "", settings_hash: str = ""
) -> str:
    """What a judgment depends on; empty parts are left out so older keys stay valid."""
    payload = {"response": response_key, "judge": judge, "template": template_hash}
    if reference_hash:
        payload["reference"] = reference_hash
    if settings_hash:
        payload["settings"] = settings_hash
    return canonical_hash(payload)


def text_hash(text: str | None) -> str:
    """Short hash of a text that a key depends on (a gold reference); "" for none."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16] if text else ""


class GoldReference(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt_id: str
    model: str
    text: str
    created: str
    template_hash: str = ""
    sample: int = 0
    reviewed: bool = False
