"""What a provider plugin's RemoteBackend returns and, for `--batch`, implements: `Completion` (one
successful call), `BatchInfo` (one provider batch) and the `BatchAPI` protocol that `batch.BatchDriver`
drives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from deccp_eval.base.schema import Request, TokenLogprob


class Completion(BaseModel):
    """What one successful API call yields; the engine adds the key, latency and cost."""

    model_config = ConfigDict(extra="forbid")

    text: str = ""
    reasoning: str | None = None
    finish_reason: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    logprobs: list[TokenLogprob] | None = None
    provider_model: str | None = None  # the `model` the provider says answered (a dated snapshot)
    system_fingerprint: str | None = None  # OpenAI's backend configuration id, when sent


class BatchInfo(BaseModel):
    """A provider's batch, in the terms the driver needs."""

    model_config = ConfigDict(extra="forbid")

    id: str
    status: str  # the provider's own word: validating, in_progress, ended, expired, failed...
    ended: bool  # no more progress: results (if any) can be read
    completed: int = 0
    failed: int = 0
    total: int = 0
    message: str | None = None  # why it failed (validation errors), or None
    expires_at: str | None = None
    files: list[str] = []  # where the provider keeps the results (OpenAI: output and error file ids)


@runtime_checkable
class BatchAPI(Protocol):
    """A provider's batch API, as a RemoteBackend subclass adds it (the openai and anthropic plugins):
    one request as a batch line, submit, poll, read the results, cancel, and the provider's limits per
    batch (`batch_max_requests` 0: none). Everything else (splitting, storing batch ids, resuming,
    polling, retries) is the driver's (`batch.BatchDriver`)."""

    batch_max_requests: ClassVar[int]
    batch_max_bytes: ClassVar[int]

    def batch_line(self, request: Request) -> dict[str, Any]:
        """One request as a line of a batch, its `custom_id` the request key."""
        ...

    async def batch_submit(self, client: Any, lines: list[dict[str, Any]]) -> BatchInfo:
        """Create a batch of these lines."""
        ...

    async def batch_poll(self, client: Any, batch_id: str) -> BatchInfo: ...

    def batch_results(self, client: Any, info: BatchInfo) -> AsyncIterator[tuple[str, Completion | str]]:
        """(custom_id, Completion or the line's error) for every line the ended batch answered."""
        ...

    async def batch_cancel(self, client: Any, batch_id: str) -> BatchInfo: ...
