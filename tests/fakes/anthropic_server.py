"""A fake Anthropic Messages server: POST /v1/messages in the real wire format, and Message Batches
(fakes/batch.py).

Models: any name answers with one text block; `fake-claude-thinking` puts a `thinking` block
first. The system prompt (top-level `system`) is echoed into the answer so tests can see it.
"""

from __future__ import annotations

import itertools
from typing import Any

from fakes.batch import BatchBook, BatchRoutes
from fakes.server import FakeServer, answer_for, n_tokens, reasoning_for, serve_main

_ids = itertools.count(1)


class FakeAnthropicServer(BatchRoutes, FakeServer):
    provider = "anthropic"

    def __init__(self, *args: Any, book: BatchBook | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.attach(book)  # the batch endpoints' state (fakes/batch.py), shared across a restart

    path = "/v1/messages"

    @property
    def base_url(self) -> str:
        return self.url  # the SDK appends /v1/messages

    def prompt_of(self, body: dict[str, Any]) -> tuple[str, str | None]:
        messages = body.get("messages") or []
        content = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
        if isinstance(content, list):
            content = "".join(b.get("text", "") for b in content if isinstance(b, dict))
        system = body.get("system")
        if isinstance(system, list):
            system = "".join(b.get("text", "") for b in system if isinstance(b, dict))
        return content, system

    def success(self, body: dict[str, Any], prompt: str, system: str | None, empty: bool) -> dict[str, Any]:
        model = body.get("model", "")
        answer = "" if empty else answer_for(prompt, system)
        blocks: list[dict[str, Any]] = []
        if model == "fake-claude-thinking" and not empty:
            blocks.append({"type": "thinking", "thinking": reasoning_for(prompt), "signature": "c2lnbmF0dXJl"})
        choice = body.get("tool_choice") or {}
        if str(model).startswith("judge-") and choice.get("type") == "tool":  # forced tool use: a tool_use block
            from fakes.judge_server import judge_fields

            fields = judge_fields(str(model), prompt) or {"reasoning": "hard to say"}
            blocks.append(
                {"type": "tool_use", "id": f"toolu_{next(_ids):06d}", "name": choice["name"], "input": fields}
            )
            return {
                "id": f"msg_{next(_ids):06d}",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": blocks,
                "stop_reason": "tool_use",
                "stop_sequence": None,
                "usage": {"input_tokens": n_tokens(prompt, system), "output_tokens": 20},
            }
        if str(model).startswith("judge-"):
            from fakes.judge_server import judge_output

            answer = judge_output(str(model), prompt)
        blocks.append({"type": "text", "text": answer})
        return {
            "id": f"msg_{next(_ids):06d}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": blocks,
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": n_tokens(prompt, system), "output_tokens": n_tokens(answer)},
        }

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        kind = {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            429: "rate_limit_error",
            529: "overloaded_error",
        }.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}


if __name__ == "__main__":
    serve_main(FakeAnthropicServer)
