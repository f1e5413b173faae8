"""`openai:MODEL`: any OpenAI-compatible chat completions endpoint through the official `openai` SDK.

One backend serves OpenAI, DeepSeek, Qwen (DashScope compatible mode), Moonshot, OpenRouter,
Together, `vllm serve`, llama.cpp's server and Ollama: point `--base-url` (or `base_url` in a
models file) at the endpoint and `--api-key-env` at the variable holding its key.

Reasoning models return their reasoning either in a `reasoning_content` (DeepSeek, vLLM) or
`reasoning` (OpenRouter, newer vLLM) field, or inline as `<think>` blocks (Qwen3, R1 distills on
plain servers); both end up in Response.reasoning, apart from the answer the judges see.

Options (`OpenAIBackend.Options`, from `--backend-option` or a models file's `options`), besides the
engine's knobs: `max_tokens_param: max_completion_tokens` for models that reject `max_tokens`
(OpenAI o-series, GPT-5); `omit_params: [temperature, top_p, seed]` for servers that reject some
sampling parameter (both part of the fingerprint: the server's own defaults then decide). The endpoint
(base_url, else $OPENAI_BASE_URL, else api.openai.com) is part of the fingerprint; each response
keeps the `model` and `system_fingerprint` the server returned.

Batch API (`--batch`, backends/remote/batch.py drives it): a JSONL file uploaded with `files.create(purpose=
"batch")`, `batches.create` on /v1/chat/completions, `batches.retrieve` to poll, the output and
error files read with `files.content`; each line's `custom_id` is the request key.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import Field

from deccp_eval.backends.remote import BatchInfo, Completion, Fault, RemoteBackend, stainless_fault
from deccp_eval.base.hookspecs import hookimpl
from deccp_eval.base.reasoning import split_reasoning
from deccp_eval.base.schema import Request, SamplingParams, TokenLogprob


class OpenAIBackend(RemoteBackend):
    name = "openai"
    description = "OpenAI-compatible chat API (OpenAI, DeepSeek, Qwen, Moonshot, OpenRouter, vllm serve, Ollama)"
    client_class = "AsyncOpenAI"
    sdk_module = "openai"
    default_key_env = "OPENAI_API_KEY"
    base_url_env = "OPENAI_BASE_URL"
    default_base_url = "https://api.openai.com/v1"
    not_found_hint = "check the model name {model!r} and --base-url (OpenAI-compatible servers usually end in /v1)"
    structured_output = True  # response_format with a JSON schema
    logprobs = True

    class Options(RemoteBackend.Options):
        max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = Field(
            "max_tokens",
            description="the name the server takes the token limit under (for reasoning "
            "models max_completion_tokens also bounds the reasoning: in the key)",
        )
        omit_params: list[Literal["temperature", "top_p", "seed"]] = Field(
            default_factory=list, description="sampling parameters the server rejects; its defaults apply"
        )

    opts: Options  # what parse_options() builds: this class's options

    def sdk_fault(self, exc: BaseException) -> Fault | None:
        return stainless_fault(self.sdk(), exc, self.options.timeout_s, self._hint)

    def body(self, request: Request) -> dict[str, Any]:
        """The chat completions arguments for one request."""
        p = request.params
        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages(),
            "temperature": p.temperature,
            "top_p": p.top_p,
            self.opts.max_tokens_param: p.max_tokens,
        }
        if p.seed is not None:
            body["seed"] = p.seed
        for name in self.opts.omit_params:
            body.pop(name, None)
        body.update(judge_fields(p))
        if p.reasoning_effort is not None:
            body["reasoning_effort"] = p.reasoning_effort
        if p.thinking is not None:  # vLLM / SGLang servers hand these to the model's chat template
            body["chat_template_kwargs"] = {"enable_thinking": p.thinking}
        return body

    async def complete(self, client: Any, request: Request) -> Completion:
        # The same JSON `chat.completions.create` would send, through the SDK client's connection pool
        # and base URL, read back as plain JSON (`post_json`): the SDK's typed path costs more CPU per
        # call than the rest of a run together.
        return completion_from(
            await self.post_json(client, "/chat/completions", self.body(request), self.headers(client))
        )

    def headers(self, client: Any) -> dict[str, str]:
        """What an OpenAI-compatible server needs: the bearer key (the placeholder when none is
        needed, as the SDK sends), JSON, and the organisation/project the SDK read from its env vars."""
        headers = {
            "Authorization": f"Bearer {client.api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "deccp-eval",
        }
        for name, attr in (("OpenAI-Organization", "organization"), ("OpenAI-Project", "project")):
            if isinstance(getattr(client, attr, None), str):
                headers[name] = getattr(client, attr)
        return headers

    # -- the Batch API ---------------------------------------------------------------------------
    batch_api = True
    batch_max_requests = 50_000  # OpenAI's limits per batch
    batch_max_bytes = 200 * 1024 * 1024

    def batch_line(self, request: Request) -> dict[str, Any]:
        return {"custom_id": request.key, "method": "POST", "url": BATCH_ENDPOINT, "body": self.body(request)}

    async def batch_submit(self, client: Any, lines: list[dict[str, Any]]) -> BatchInfo:
        data = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
        uploaded = await client.files.create(file=("deccp-batch.jsonl", data, "application/jsonl"), purpose="batch")
        return batch_info(
            await client.batches.create(input_file_id=uploaded.id, endpoint=BATCH_ENDPOINT, completion_window="24h")
        )

    async def batch_poll(self, client: Any, batch_id: str) -> BatchInfo:
        return batch_info(await client.batches.retrieve(batch_id))

    async def batch_cancel(self, client: Any, batch_id: str) -> BatchInfo:
        return batch_info(await client.batches.cancel(batch_id))

    async def batch_results(self, client: Any, info: BatchInfo) -> AsyncIterator[tuple[str, Completion | str]]:
        for file_id in info.files:
            content = await client.files.content(file_id)
            for raw in content.text.splitlines():
                if raw.strip():
                    yield batch_outcome(json.loads(raw))


BATCH_ENDPOINT = "/v1/chat/completions"
ENDED = ("completed", "failed", "expired", "cancelled")


def batch_info(batch: Any) -> BatchInfo:
    """An SDK Batch -> BatchInfo (counts, validation errors, the output and error file ids)."""
    counts = batch.request_counts
    errors = [e.message for e in ((batch.errors.data or []) if batch.errors else []) if getattr(e, "message", None)]
    expires = (
        datetime.fromtimestamp(batch.expires_at, timezone.utc).isoformat(timespec="seconds")
        if batch.expires_at
        else None
    )
    return BatchInfo(
        id=batch.id,
        status=batch.status,
        ended=batch.status in ENDED,
        completed=counts.completed if counts else 0,
        failed=counts.failed if counts else 0,
        total=counts.total if counts else 0,
        message="; ".join(errors) or None,
        expires_at=expires,
        files=[f for f in (batch.output_file_id, batch.error_file_id) if f],
    )


def batch_outcome(line: dict[str, Any]) -> tuple[str, Completion | str]:
    """One line of an output or error file -> (custom_id, Completion or the line's error)."""
    key = str(line.get("custom_id"))
    error = line.get("error")
    if error:
        return key, f"{error.get('code') or 'error'}: {error.get('message') or ''}".strip()
    response = line.get("response") or {}
    body = response.get("body")
    status = response.get("status_code")
    if status != 200:
        message = (
            body.get("error", {}).get("message")
            if isinstance(body, dict) and isinstance(body.get("error"), dict)
            else str(body)[:300]
        )
        return key, f"HTTP {status}: {message}"
    try:
        return key, completion_from(body)
    except Fault as fault:
        return key, f"{fault.kind}: {fault.text}"


# -- structured output and log-probs (asked for by judges) ---------------------------------------------
def judge_fields(p: SamplingParams) -> dict[str, Any]:
    """`response_format` with a strict JSON schema, and `logprobs`/`top_logprobs`, when the params ask."""
    out: dict[str, Any] = {}
    if p.json_schema is not None:
        out["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "judgment", "strict": True, "schema": p.json_schema},
        }
    if p.top_logprobs is not None:
        out["logprobs"] = True
        out["top_logprobs"] = p.top_logprobs
    return out


def logprobs_from(choice: dict[str, Any]) -> list[TokenLogprob] | None:
    """`choices[0].logprobs.content[]` -> TokenLogprob list; None when the server sent none."""
    lp = choice.get("logprobs")
    content = lp.get("content") if isinstance(lp, dict) else None
    if not isinstance(content, list):
        return None
    out = []
    for t in content:
        if isinstance(t, dict) and isinstance(t.get("token"), str) and isinstance(t.get("logprob"), (int, float)):
            top = {
                a["token"]: float(a["logprob"])
                for a in t.get("top_logprobs") or []
                if isinstance(a, dict) and isinstance(a.get("token"), str)
            }
            out.append(TokenLogprob(token=t["token"], logprob=float(t["logprob"]), top=top))
    return out or None


def completion_from(data: Any) -> Completion:
    """A chat completion's JSON -> Completion. A body without choices (an HTML page, an error object
    sent with status 200) is a malformed response, retried like a server error."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        error = data.get("error") if isinstance(data, dict) else str(data)[:200]
        raise Fault("malformed response", f"response without choices{f': {error}' if error else ''}", retryable=True)
    choice = choices[0]
    message = choice.get("message") or {}
    content = message.get("content")
    if isinstance(content, list):  # some servers send content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    reasoning_field = message.get("reasoning_content") or message.get("reasoning")
    split = split_reasoning(
        content if isinstance(content, str) else "", reasoning_field if isinstance(reasoning_field, str) else None
    )
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return Completion(
        text=split.answer,
        reasoning=split.reasoning,
        finish_reason=choice.get("finish_reason"),
        tokens_in=_int(usage.get("prompt_tokens")),
        tokens_out=_int(usage.get("completion_tokens")),
        logprobs=logprobs_from(choice),
        provider_model=_str(data.get("model")),
        system_fingerprint=_str(data.get("system_fingerprint")),
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@hookimpl
def register_backends(register: Callable[..., None]) -> None:
    register(OpenAIBackend)
