"""A fake OpenAI-compatible server: POST /v1/chat/completions in the real wire format, and the
Batch API (fakes/batch.py).

Models: any name answers plainly; `fake-reasoner` adds a `reasoning_content` field (DeepSeek,
vLLM style); `fake-think` puts `<think>...</think>` before the answer (Qwen3 style); `fake-latest`
is answered by the dated snapshot `fake-2026-01-01` (the reply's `model`, as OpenAI aliases do).
Every reply carries `system_fingerprint` (settable per server, to stand for a backend change).
Run alone for benchmarks: PYTHONPATH=tests python -m fakes.openai_server --latency 0.1
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from fakes.batch import BatchBook, BatchRoutes
from fakes.server import FakeServer, answer_for, n_tokens, reasoning_for, serve_main

_ids = itertools.count(1)
SNAPSHOTS = {"fake-latest": "fake-2026-01-01"}


class FakeOpenAIServer(BatchRoutes, FakeServer):
    provider = "openai"
    system_fingerprint = "fp_fake0001"

    def __init__(self, *args: Any, book: BatchBook | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.attach(book)  # the batch endpoints' state (fakes/batch.py), shared across a restart

    path = "/v1/chat/completions"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def prompt_of(self, body: dict[str, Any]) -> tuple[str, str | None]:
        messages = body.get("messages") or []
        user = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
        system = next((m["content"] for m in messages if m.get("role") == "system"), None)
        return user, system

    def success(self, body: dict[str, Any], prompt: str, system: str | None, empty: bool) -> dict[str, Any]:
        model = body.get("model", "")
        answer = "" if empty else answer_for(prompt, system)
        message: dict[str, Any] = {"role": "assistant", "content": answer}
        if model == "fake-reasoner" and not empty:
            message["reasoning_content"] = reasoning_for(prompt)
        if model == "fake-think" and not empty:
            message["content"] = f"<think>{reasoning_for(prompt)}</think>\n{answer}"
        return {
            "id": f"chatcmpl-{next(_ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": SNAPSHOTS.get(model, model),
            "system_fingerprint": self.system_fingerprint,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
            "usage": {
                "prompt_tokens": n_tokens(prompt, system),
                "completion_tokens": n_tokens(message["content"]),
                "total_tokens": n_tokens(prompt, system, message["content"]),
            },
        }

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        kind = {
            400: "invalid_request_error",
            401: "invalid_api_key",
            404: "model_not_found",
            429: "rate_limit_exceeded",
        }.get(status, "server_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": kind}}


if __name__ == "__main__":
    serve_main(FakeOpenAIServer)
