"""`anthropic:MODEL`: Claude through the official `anthropic` SDK's Messages API.

The system prompt goes in `system`, `max_tokens` is required, the key comes from
ANTHROPIC_API_KEY (or the variable named by --api-key-env). The Messages API version this SDK
speaks (2026-10-21) has no temperature/top_p/seed, so they are not sent: sampling is the model's
own. `thinking` blocks are stored as Response.reasoning, apart from the answer; the stop reason
(`end_turn`, `max_tokens`, `refusal`, ...) is kept as the finish reason.

Message Batches (`--batch`, backends/remote/batch.py drives it): `messages.batches.create` with the request
key as each `custom_id`, `retrieve` to poll `processing_status`, `results()` streamed when it has
ended; `errored`, `expired` and `canceled` lines are failures of that line only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from deccp_eval.backends.contract import OnResponse
from deccp_eval.backends.remote import BatchInfo, Completion, Fault, RemoteBackend, stainless_fault
from deccp_eval.base.hookspecs import hookimpl
from deccp_eval.base.reasoning import split_reasoning
from deccp_eval.base.schema import Request, SamplingParams

log = logging.getLogger("deccp_eval")
_DEFAULTS = SamplingParams()
JUDGMENT_TOOL = "record_judgment"


class AnthropicBackend(RemoteBackend):
    name = "anthropic"
    description = "Anthropic Messages API (Claude); system prompt, max_tokens, thinking kept as reasoning"
    client_class = "AsyncAnthropic"
    sdk_module = "anthropic"
    default_key_env = "ANTHROPIC_API_KEY"
    base_url_env = "ANTHROPIC_BASE_URL"
    default_base_url = "https://api.anthropic.com"
    not_found_hint = "check the model name {model!r} (e.g. claude-sonnet-4-5) and --base-url"
    structured_output = True  # a forced tool call with the schema as its input

    def sdk_fault(self, exc: BaseException) -> Fault | None:
        return stainless_fault(self.sdk(), exc, self.options.timeout_s, self._hint)

    def generate(self, requests: Iterable[Request], on_response: OnResponse) -> None:
        told = False

        def noted(requests: Iterable[Request]) -> Iterator[Request]:  # lazy: the runner streams requests
            nonlocal told
            for r in requests:
                if not told and (r.params.temperature != _DEFAULTS.temperature or r.params.top_p != _DEFAULTS.top_p):
                    log.info("%s: the Messages API takes no temperature/top_p/seed; they are not sent", self.spec)
                    told = True
                yield r

        super().generate(noted(requests), on_response)

    def body(self, request: Request) -> dict[str, Any]:
        """The messages.create arguments for one request."""
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.params.max_tokens,
            "messages": [{"role": "user", "content": request.text}],
        }
        if request.params.system_prompt:
            body["system"] = request.params.system_prompt
        if request.params.thinking_budget is not None and request.params.thinking is not False:
            body["thinking"] = {"type": "enabled", "budget_tokens": request.params.thinking_budget}
        if request.params.json_schema is not None:  # structured output: one forced tool call
            body["tools"] = [
                {
                    "name": JUDGMENT_TOOL,
                    "description": "Record the judgment.",
                    "input_schema": request.params.json_schema,
                }
            ]
            body["tool_choice"] = {"type": "tool", "name": JUDGMENT_TOOL}
        return body

    async def complete(self, client: Any, request: Request) -> Completion:
        return completion_from(await client.messages.create(**self.body(request)))

    # -- Message Batches -------------------------------------------------------------------------
    batch_api = True
    batch_max_requests = 100_000  # Anthropic's limits per batch
    batch_max_bytes = 256 * 1024 * 1024

    def batch_line(self, request: Request) -> dict[str, Any]:
        return {"custom_id": request.key, "params": self.body(request)}

    async def batch_submit(self, client: Any, lines: list[dict[str, Any]]) -> BatchInfo:
        return batch_info(await client.messages.batches.create(requests=lines))

    async def batch_poll(self, client: Any, batch_id: str) -> BatchInfo:
        return batch_info(await client.messages.batches.retrieve(batch_id))

    async def batch_cancel(self, client: Any, batch_id: str) -> BatchInfo:
        return batch_info(await client.messages.batches.cancel(batch_id))

    async def batch_results(self, client: Any, info: BatchInfo) -> AsyncIterator[tuple[str, Completion | str]]:
        async for item in await client.messages.batches.results(info.id):
            result = item.result
            if result.type == "succeeded":
                try:
                    yield item.custom_id, completion_from(result.message)
                except Fault as fault:
                    yield item.custom_id, f"{fault.kind}: {fault.text}"
            elif result.type == "errored":
                inner = getattr(result.error, "error", None)
                yield item.custom_id, f"errored: {getattr(inner, 'type', 'error')}: {getattr(inner, 'message', '')}"
            else:  # expired, canceled
                yield item.custom_id, str(result.type)


def batch_info(batch: Any) -> BatchInfo:
    """An SDK MessageBatch -> BatchInfo."""
    c = batch.request_counts
    return BatchInfo(
        id=batch.id,
        status=batch.processing_status,
        ended=batch.processing_status == "ended",
        completed=c.succeeded,
        failed=c.errored + c.expired + c.canceled,
        total=c.succeeded + c.errored + c.expired + c.canceled + c.processing,
        expires_at=batch.expires_at.isoformat(timespec="seconds") if batch.expires_at else None,
    )


def completion_from(message: Any) -> Completion:
    """A Message -> Completion: text blocks are the answer, thinking blocks the reasoning."""
    blocks = getattr(message, "content", None)
    if not isinstance(blocks, list):
        raise Fault("malformed response", "response without content blocks", retryable=True)
    texts: list[str] = []
    reasoning: list[str] = []
    for block in blocks:
        kind = getattr(block, "type", None)
        if kind == "text":
            texts.append(getattr(block, "text", "") or "")
        elif kind == "thinking":
            reasoning.append(getattr(block, "thinking", "") or "")
        elif kind == "tool_use" and getattr(block, "name", None) == JUDGMENT_TOOL:  # the forced judgment tool
            texts.append(json.dumps(getattr(block, "input", None), ensure_ascii=False))
    split = split_reasoning("".join(texts), "\n".join(r.strip() for r in reasoning if r.strip()))
    usage = getattr(message, "usage", None)
    tokens_in = getattr(usage, "input_tokens", None)
    if tokens_in is not None:  # prompt-cache reads and writes are input too
        tokens_in += (getattr(usage, "cache_creation_input_tokens", None) or 0) + (
            getattr(usage, "cache_read_input_tokens", None) or 0
        )
    return Completion(
        text=split.answer,
        reasoning=split.reasoning,
        finish_reason=getattr(message, "stop_reason", None),
        tokens_in=tokens_in,
        tokens_out=getattr(usage, "output_tokens", None),
        provider_model=getattr(message, "model", None) or None,
    )


@hookimpl
def register_backends(register: Callable[..., None]) -> None:
    register(AnthropicBackend)
