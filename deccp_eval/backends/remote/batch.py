"""The provider-neutral batch driver (`--batch`): requests sent through a provider's batch API at
about half the price, durable across restarts.

What a provider plugin gives (methods on its RemoteBackend: `provider.BatchAPI`): one request as a
batch line, submit, poll, read results, cancel. Everything else is here: splitting requests into batches by
the provider's count and size limits; writing each batch id with its request keys to the store the
moment the provider accepts it (`batch_store`); resuming open batches instead of submitting again;
polling with a progress line from the provider's counts; storing each line as it is read; and one
retry of every failed, errored or expired line (synchronously by default, or in a new batch with
`batch_retry: batch`), after which a line that failed twice is delivered as an error.

Knobs (`RemoteBackend.Options`, `--backend-option`, a models file's `options`): `batch_poll_s` (default 30,
also env DECCP_EVAL_BATCH_POLL_S), `batch_retry` (`sync` | `batch`), `batch_max_requests`,
`batch_max_bytes` (below the provider's limits, e.g. for tests).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, Protocol

from pydantic import BaseModel

from deccp_eval.backends import pricing
from deccp_eval.backends.contract import BackendOptions
from deccp_eval.backends.remote.faults import Fault, RemoteError
from deccp_eval.backends.remote.provider import BatchAPI, BatchInfo, Completion
from deccp_eval.base.errors import UsageError
from deccp_eval.base.schema import Request, Response
from deccp_eval.store.batches import BatchState

log = logging.getLogger("deccp_eval")
POLL_ENV = "DECCP_EVAL_BATCH_POLL_S"
MAX_POLL_FAILURES = 50  # consecutive failed polls before giving up (the batch ids stay stored)
LineOutcome = tuple[str, "Completion | str"]  # (custom_id, the completion or the line's error)


class BatchEngine(BatchAPI, Protocol):
    """What the driver uses of a backend: its batch API and, from the engine (`engine.RemoteBackend`),
    its spec, options, fault classification, retry policy, key scrubbing and synchronous path."""

    @property
    def spec(self) -> str: ...

    model: str
    options: BackendOptions
    opts: Any  # the plugin's RemoteBackend.Options: batch_poll_s, batch_retry, batch_max_requests/bytes

    def classify(self, exc: BaseException) -> Fault: ...

    def retry_policy(self) -> Any: ...  # engine.RetryPolicy: `attempts`

    def _scrub(self, text: str) -> str: ...

    async def _generate(
        self, requests: Iterable[Request], on_response: Callable[[Response], None], api_key: str | None
    ) -> None: ...


class Plan(BaseModel):
    """What `--dry-run` prints for one backend: requests, batches, estimated USD at both prices."""

    spec: str
    requests: int
    batches: int
    tokens_in: int
    tokens_out: int
    cost_batch: float | None
    cost_sync: float | None

    def line(self) -> str:
        def usd(x: float | None) -> str:
            return "unknown price" if x is None else f"${x:,.4f}"

        return (
            f"{self.spec}: {self.requests} requests in {self.batches} batch(es); about {self.tokens_in:,} input "
            f"and at most {self.tokens_out:,} output tokens; estimated cost {usd(self.cost_batch)} by batch, "
            f"{usd(self.cost_sync)} at normal prices"
        )


def split(
    lines: Sequence[tuple[Request, bytes]], max_requests: int, max_bytes: int
) -> list[list[tuple[Request, bytes]]]:
    """Consecutive chunks under both limits (a request count and the JSONL size in bytes)."""
    chunks: list[list[tuple[Request, bytes]]] = []
    size = 0
    for req, data in lines:
        if len(data) + 1 > max_bytes:
            raise UsageError(f"request {req.prompt_id}: {len(data)} bytes, over the batch size limit {max_bytes}")
        if not chunks or len(chunks[-1]) >= max_requests or size + len(data) + 1 > max_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append((req, data))
        size += len(data) + 1
    return chunks


def estimate_tokens(text: str) -> int:
    """~4 characters a token for Latin text, ~1 a token for CJK: good enough for a price estimate."""
    cjk = sum(1 for ch in text if ord(ch) >= 0x2E80)
    return cjk + (len(text) - cjk + 3) // 4


class BatchDriver:
    """Runs one backend's requests through its provider's batch API."""

    def __init__(self, backend: BatchEngine, db: str) -> None:
        self.backend = backend
        self.db = db
        o = backend.opts  # RemoteBackend.Options: typed and range-checked already
        try:
            self.poll_s = o.batch_poll_s if o.batch_poll_s is not None else float(os.environ.get(POLL_ENV, 30.0))
        except ValueError:
            raise UsageError(f"{backend.spec}: {POLL_ENV} must be a number of seconds >= 0") from None
        if self.poll_s < 0:
            raise UsageError(f"{backend.spec}: {POLL_ENV} must be a number of seconds >= 0")
        self.max_requests = min(o.batch_max_requests or backend.batch_max_requests, backend.batch_max_requests)
        self.max_bytes = min(o.batch_max_bytes or backend.batch_max_bytes, backend.batch_max_bytes)
        self.retry_mode = o.batch_retry
        price = pricing.price_for(backend.model, backend.options.prices)
        self.price = pricing.batch_price(price)
        self.sync_price = price

    # -- planning ----------------------------------------------------------------------------
    def chunks(self, requests: Sequence[Request]) -> list[list[Request]]:
        lines = [(r, json.dumps(self.backend.batch_line(r), ensure_ascii=False).encode()) for r in requests]
        return [[r for r, _ in chunk] for chunk in split(lines, self.max_requests, self.max_bytes)]

    def plan(self, requests: Sequence[Request]) -> Plan:
        tokens_in = sum(estimate_tokens((r.params.system_prompt or "") + r.text) for r in requests)
        tokens_out = sum(r.params.max_tokens for r in requests)
        return Plan(
            spec=self.backend.spec,
            requests=len(requests),
            batches=len(self.chunks(requests)),
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost_batch=pricing.cost(self.price, tokens_in, tokens_out),
            cost_sync=pricing.cost(self.sync_price, tokens_in, tokens_out),
        )

    # -- the run -----------------------------------------------------------------------------
    async def run(
        self, requests: Sequence[Request], on_response: Callable[[Response], None], client: Any, api_key: str | None
    ) -> None:
        state = BatchState(self.db)
        try:
            await self._run(state, requests, on_response, client, api_key)
        finally:
            state.close()

    async def _run(
        self,
        state: BatchState,
        requests: Sequence[Request],
        on_response: Callable[[Response], None],
        client: Any,
        api_key: str | None,
    ) -> None:
        by_key = {r.key: r for r in requests}

        def deliver(responses: Sequence[Response]) -> None:
            for resp in responses:
                on_response(resp)
            state.delivered(r.key for r in responses)

        new: list[Request] = []
        open_ids: list[str] = []
        retry: list[Request] = []
        known = state.lines_for(by_key)
        for key, req in by_key.items():
            fresh = _since_delivery(known.get(key, []))
            if not fresh:
                new.append(req)
            elif fresh[-1].state == "pending":
                if fresh[-1].batch_id not in open_ids:
                    open_ids.append(fresh[-1].batch_id)
            elif fresh[-1].state == "ok":
                deliver([Response.model_validate_json(fresh[-1].result or "{}")])
            else:
                retry.append(req)
        if open_ids:
            log.warning("%s: resuming %d open batch(es): %s", self.backend.spec, len(open_ids), ", ".join(open_ids))
        while True:
            for chunk in self.chunks(new):
                open_ids.append(await self._submit(state, client, chunk))
            new = []
            await asyncio.gather(*(self._wait(state, client, batch_id) for batch_id in open_ids))
            for batch_id in open_ids:
                ready = []
                for line in state.lines_of(batch_id):
                    if line.key in by_key and not line.delivered:
                        if line.state == "ok":
                            ready.append(Response.model_validate_json(line.result or "{}"))
                        elif line.state == "error":
                            retry.append(by_key[line.key])
                deliver(ready)
            open_ids = []
            again: list[Request] = []
            give_up: list[Request] = []
            known = state.lines_for(r.key for r in retry)
            for req in retry:
                errors = [x for x in _since_delivery(known.get(req.key, [])) if x.state == "error"]
                (again if len(errors) < 2 else give_up).append(req)
                if errors and len(errors) < 2:
                    log.warning(
                        "%s %s: batch line failed (%s); retrying %s",
                        self.backend.spec,
                        req.prompt_id,
                        errors[-1].error,
                        "in a new batch" if self.retry_mode == "batch" else "synchronously",
                    )
            retry = []
            for req in give_up:
                errors = [x.error for x in _since_delivery(known[req.key]) if x.state == "error"]
                deliver([Response(key=req.key, error=f"batch line failed twice; last: {errors[-1]}")])
            if not again:
                return
            if self.retry_mode == "batch":
                new = again
                continue
            await self._retry_sync(state, again, deliver, api_key)
            return

    async def _retry_sync(
        self,
        state: BatchState,
        requests: Sequence[Request],
        deliver: Callable[[Sequence[Response]], None],
        api_key: str | None,
    ) -> None:
        """One synchronous retry through the engine's own retry policy, at normal prices."""
        results: list[Response] = []
        await self.backend._generate(requests, results.append, api_key)
        deliver(results)

    async def _submit(self, state: BatchState, client: Any, chunk: Sequence[Request]) -> str:
        info = await self.backend.batch_submit(client, [self.backend.batch_line(r) for r in chunk])
        opts = self.backend.options.model_dump(include={"base_url", "api_key_env", "prices", "timeout_s", "extra"})
        state.record(info.id, self.backend.spec, info.status, chunk, opts)
        when = f" (the provider may take until {info.expires_at})" if info.expires_at else ""
        log.warning(
            "%s: submitted batch %s with %d requests; results within 24 hours%s. Safe to stop: rerun the "
            "same command or `deccp-eval batches` to pick it up.",
            self.backend.spec,
            info.id,
            len(chunk),
            when,
        )
        return info.id

    async def _wait(self, state: BatchState, client: Any, batch_id: str) -> None:
        """Poll until the batch ends, then read its lines into the store."""
        row = state.batch(batch_id)
        if row is not None and row.finished:
            return
        failures = 0
        last: tuple[int, int, str] | None = None
        t0 = time.monotonic()
        while True:
            try:
                info = await self.backend.batch_poll(client, batch_id)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a dropped connection or a restarting server: poll again later
                fault = self.backend.classify(exc)
                if fault.fatal:
                    raise RemoteError(
                        f"{self.backend.spec}: batch {batch_id}: {self.backend._scrub(fault.text)}"
                    ) from None
                failures += 1
                if failures >= MAX_POLL_FAILURES:
                    raise RemoteError(
                        f"{self.backend.spec}: batch {batch_id}: {failures} polls failed in a row "
                        f"(last: {self.backend._scrub(fault.text)}); its id is stored, rerun to resume"
                    ) from exc
                log.info("%s: polling batch %s failed (%s); trying again", self.backend.spec, batch_id, fault.kind)
                await asyncio.sleep(self.poll_s)
                continue
            state.update(batch_id, info.status, info.completed, info.failed, info.message)
            now = (info.completed, info.failed, info.status)
            if now != last:
                from deccp_eval.base.progress import console  # rich loads only when something is printed

                console.print(
                    f"batch {batch_id} ({self.backend.spec}): {info.completed + info.failed}/{info.total} "
                    f"done, {info.failed} failed, {info.status}, {time.monotonic() - t0:.0f}s",
                    highlight=False,
                    soft_wrap=True,
                )
                last = now
            if info.ended:
                break
            await asyncio.sleep(self.poll_s)
        if info.message:
            log.warning("%s: batch %s %s: %s", self.backend.spec, batch_id, info.status, info.message)
        await self._read(state, client, info)

    async def _read(self, state: BatchState, client: Any, info: BatchInfo) -> None:
        pending = {line.key for line in state.lines_of(info.id) if line.state == "pending"}
        for attempt in range(self.backend.retry_policy().attempts):
            try:
                async for key, outcome in self.backend.batch_results(client, info):
                    if key not in pending:
                        continue
                    if isinstance(outcome, str):
                        resp = Response(key=key, error=self.backend._scrub(outcome))
                    else:
                        resp = Response(
                            key=key,
                            text=outcome.text,
                            reasoning=outcome.reasoning,
                            finish_reason=outcome.finish_reason,
                            tokens_in=outcome.tokens_in,
                            tokens_out=outcome.tokens_out,
                            logprobs=outcome.logprobs,
                            cost=pricing.cost(self.price, outcome.tokens_in, outcome.tokens_out),
                            provider_model=outcome.provider_model,
                            system_fingerprint=outcome.system_fingerprint,
                        )
                    state.put_result(info.id, key, resp)
                    pending.discard(key)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                fault = self.backend.classify(exc)
                if fault.fatal or not fault.retryable or attempt + 1 >= self.backend.retry_policy().attempts:
                    raise RemoteError(
                        f"{self.backend.spec}: reading batch {info.id}: "
                        f"{self.backend._scrub(fault.text)}; its id is stored, rerun to resume"
                    ) from None
                log.info("%s: reading batch %s failed (%s); trying again", self.backend.spec, info.id, fault.kind)
                await asyncio.sleep(self.poll_s)
        why = info.message or f"no result (batch {info.status})"
        state.finish(info.id, info.status, f"{info.status}: {why}" if info.message else why)


def _since_delivery(lines: Sequence[Any]) -> list[Any]:
    """A key's lines after the last one a caller stored: earlier rounds are settled."""
    out: list[Any] = []
    for line in lines:
        out = [] if line.delivered else out + [line]
    return out


async def aiter_lines(text: str) -> AsyncIterator[dict[str, Any]]:
    """The JSON objects of a JSONL text (a downloaded output file), skipping blank lines."""
    for raw in text.splitlines():
        if raw.strip():
            yield json.loads(raw)
