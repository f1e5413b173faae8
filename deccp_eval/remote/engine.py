"""The async engine every remote API backend shares (retries, accounting, the sync-to-async
bridge), so every SDK behaves the same way.

A subclass implements one API call (`complete`) and how to build its SDK client; this module
does the rest: a bounded, adaptive number of requests in flight; one tenacity retry policy
(the SDKs' own retries are off); failures classified once into what a user can act on; token
and cost accounting; and keeping the API key out of everything it writes.

Retry policy: only rate limits (429), server errors (5xx, 408), timeouts, dropped connections
and malformed response bodies are retried, with exponential backoff plus jitter, never sooner
than the server's Retry-After, at most `options.max_retries` attempts in all. 401, 403 and 404
mean the key, the account or the model/URL is wrong for every request alike, so the run stops
at once with the server's message (and, because the first request goes out alone, after one
request). Other 4xx fail only that item. An item that runs out of attempts is stored as an
error, which `run --retry-errors` sends again.

Knobs in `RemoteBackend.Options` (`--backend-option K=V`, a models file's `options`): `backoff_base_s`
and `backoff_max_s` (also the env var DECCP_EVAL_BACKOFF_BASE_S, for tests and impatient users),
`first_request_grace_s` (how long the first request goes alone, default 2 s). None changes an
answer, so the fingerprint (endpoint, model, a plugin's output-changing options) leaves them out;
each response keeps the model the provider says answered and its `system_fingerprint`.

Over 300 lines because the retry loop, the task admission and the thread bridge share one
class's state; splitting them would scatter one request's life over several files.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import queue
import random
import sys
import threading
import time
from abc import abstractmethod
from types import ModuleType
from typing import Any, AsyncIterator, Awaitable, ClassVar, Literal, Sequence, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from deccp_eval import pricing
from deccp_eval.backend import Backend, OnResponse, Options, knob
from deccp_eval.errors import MissingDependency, UsageError
from deccp_eval.remote.faults import Fault, RemoteError, malformed_fault, other_fault, scrub, timeout_fault
from deccp_eval.remote.limit import AdaptiveLimit
from deccp_eval.schema import Request, Response, TokenLogprob, canonical_hash

log = logging.getLogger("deccp_eval")

NO_KEY = "none"  # `--api-key-env none`: the server needs no key (vllm serve, Ollama, llama.cpp)
NO_KEY_PLACEHOLDER = "no-key"  # sent instead, so an SDK never falls back to a real key in its default env var
BACKOFF_ENV = "DECCP_EVAL_BACKOFF_BASE_S"
RETRY_AFTER_CAP_S = 300.0  # a Retry-After beyond this is a server bug; wait this long and try again

T = TypeVar("T")


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


class RetryPolicy(BaseModel):
    """How hard to try: attempts in all, and the exponential backoff between them."""

    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(default=6, ge=1)
    base_s: float = Field(default=1.0, ge=0)
    max_s: float = Field(default=60.0, ge=0)
    retry_after_cap_s: float = Field(default=RETRY_AFTER_CAP_S, ge=0)

    def wait(self, attempt: int, retry_after: float | None, rand: float) -> float:
        """Seconds before attempt `attempt + 1`: base*2^(n-1) plus up to `base` of jitter, capped,
        and never less than the server's Retry-After."""
        backoff = min(self.max_s, self.base_s * 2 ** (attempt - 1) + rand * self.base_s)
        if retry_after is not None:
            backoff = max(backoff, min(retry_after, self.retry_after_cap_s))
        return backoff


if sys.version_info >= (3, 11):
    async def _deadline(aw: Awaitable[T], seconds: float) -> T:
        async with asyncio.timeout(seconds):
            return await aw
else:  # pragma: no cover - Python 3.10
    async def _deadline(aw: Awaitable[T], seconds: float) -> T:
        return await asyncio.wait_for(aw, seconds)


class RemoteBackend(Backend):
    """Base for API backends: subclasses name their SDK and client class and implement `complete`."""

    sdk_module: ClassVar[str]  # imported lazily: `import deccp_eval.cli` never loads an SDK
    client_class: ClassVar[str]  # e.g. "AsyncOpenAI"
    default_key_env: ClassVar[str]
    base_url_env: ClassVar[str]  # the env var the SDK reads when no base_url is given
    default_base_url: ClassVar[str]  # the SDK's own default endpoint
    not_found_hint: ClassVar[str] = "check the model name {model!r} and the base URL"
    batch_max_requests: ClassVar[int] = 0  # the provider's batch limits; 0: no batch API
    batch_max_bytes: ClassVar[int] = 0

    class Options(Options):
        """The engine's knobs: how hard and how fast to try, never what comes back."""

        backoff_base_s: float | None = knob(None, f"first retry wait (default ${BACKOFF_ENV} or 1 s)", ge=0)
        backoff_max_s: float = knob(60.0, "longest wait between retries", ge=0)
        first_request_grace_s: float = knob(2.0, "how long the first request goes alone", ge=0)
        batch_poll_s: float | None = knob(None, "seconds between batch polls (default $DECCP_EVAL_BATCH_POLL_S or 30)",
                                          ge=0)
        batch_retry: Literal["sync", "batch"] = knob("sync", "retry failed batch lines synchronously or in a batch")
        batch_max_requests: int | None = knob(None, "requests per batch, below the provider's limit", ge=1)
        batch_max_bytes: int | None = knob(None, "bytes per batch file, below the provider's limit", ge=1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._secret: str | None = None
        self._price = pricing.price_for(self.model, self.options.prices)

    # -- what subclasses provide -----------------------------------------------------------
    def make_client(self, api_key: str | None) -> Any:
        """The SDK's async client with its own retries off (max_retries=0) and our timeout. An explicit
        key (a placeholder when none is needed) stops the SDK reading keys or profiles on its own."""
        kwargs: dict[str, Any] = {"api_key": api_key or NO_KEY_PLACEHOLDER, "max_retries": 0,
                                  "timeout": self.options.timeout_s}
        if self.options.base_url:
            kwargs["base_url"] = self.options.base_url
        return getattr(self.sdk(), self.client_class)(**kwargs)

    @abstractmethod
    async def complete(self, client: Any, request: Request) -> Completion:
        """One API call for one request; raise whatever the SDK raises."""

    def endpoint(self) -> str:
        """Where requests go: base_url, else the SDK's env var, else the SDK's default."""
        return (self.options.base_url or os.environ.get(self.base_url_env) or self.default_base_url).rstrip("/")

    def fingerprint(self) -> str:
        """Endpoint, model and the plugin's output-changing options: two servers that both call a
        model `m` never share answers. What the provider actually ran is kept per response."""
        return canonical_hash({"spec": self.spec, "endpoint": self.endpoint(),
                               "options": self.opts.output_options()})[:32]

    # -- the provider's batch API (remote/batch.py drives it) -----------------------------------
    def batch_line(self, request: Request) -> dict[str, Any]:
        """One request as a line of a batch, its `custom_id` the request key."""
        raise UsageError(f"{self.spec}: this backend has no batch API")

    async def batch_submit(self, client: Any, lines: list[dict[str, Any]]) -> Any:
        """Create a batch of these lines; returns its BatchInfo."""
        raise UsageError(f"{self.spec}: this backend has no batch API")

    async def batch_poll(self, client: Any, batch_id: str) -> Any:
        raise UsageError(f"{self.spec}: this backend has no batch API")

    def batch_results(self, client: Any, info: Any) -> AsyncIterator[tuple[str, Completion | str]]:
        """(custom_id, Completion or the line's error) for every line the ended batch answered."""
        raise UsageError(f"{self.spec}: this backend has no batch API")

    async def batch_cancel(self, client: Any, batch_id: str) -> Any:
        raise UsageError(f"{self.spec}: this backend has no batch API")

    def batch_call(self, method: str, batch_id: str) -> Any:
        """One batch call (`batch_poll` or `batch_cancel`) outside a run, for `deccp-eval batches`."""
        async def go() -> Any:
            self._secret = self.api_key()
            client = self.make_client(self._secret)
            try:
                return await getattr(self, method)(client, batch_id)
            except UsageError:
                raise
            except Exception as exc:
                raise RemoteError(f"{self.spec}: batch {batch_id}: {self._scrub(self.classify(exc).text)}") from None
            finally:
                await client.close()
        return asyncio.run(go())

    def batch_driver(self) -> Any:  # -> BatchDriver
        from deccp_eval.remote.batch import BatchDriver

        if not self.batch_max_requests:
            raise UsageError(f"{self.spec}: --batch needs a backend with a batch API (openai, anthropic)")
        if not self.options.state_db:
            raise UsageError(f"{self.spec}: --batch needs a store to keep the batch ids in (state_db)")
        return BatchDriver(self, self.options.state_db)

    # -- configuration ---------------------------------------------------------------------
    @property
    def key_env(self) -> str:
        return self.options.api_key_env or self.default_key_env

    @property
    def no_key(self) -> bool:
        return self.key_env.strip().lower() == NO_KEY

    def sdk(self) -> ModuleType:
        try:
            return importlib.import_module(self.sdk_module)
        except ImportError:
            raise MissingDependency(self.sdk_module, "api", f"The {self.name} backend") from None

    def api_key(self) -> str | None:
        """The key from the named env var (None for `none`); a clear error when it is unset."""
        if self.no_key:
            return None
        value = os.environ.get(self.key_env, "").strip()
        if not value:
            raise UsageError(
                f"{self.spec}: the API key env var {self.key_env} is not set. Export it "
                f"(export {self.key_env}=...), name another variable with --api-key-env or `api_key_env` in a "
                f"models file, or pass --api-key-env {NO_KEY} for a local server that needs no key.")
        return value

    def check(self) -> None:
        self.sdk()
        if not self.options.dry_run:  # a dry run sends nothing: no key needed to price it
            self.api_key()
        self.retry_policy()
        self.grace_s()
        if self.options.batch:
            self.batch_driver()

    def grace_s(self) -> float:
        """How long the first request goes alone before the others follow (AdaptiveLimit)."""
        return self.opts.first_request_grace_s

    def retry_policy(self) -> RetryPolicy:
        base = self.opts.backoff_base_s
        try:
            return RetryPolicy(attempts=self.options.max_retries,
                               base_s=float(os.environ.get(BACKOFF_ENV, 1.0)) if base is None else base,
                               max_s=self.opts.backoff_max_s)
        except (TypeError, ValueError):  # pydantic's ValidationError is a ValueError
            raise UsageError(f"{self.spec}: {BACKOFF_ENV} must be a number of seconds >= 0") from None

    # -- classification --------------------------------------------------------------------
    def sdk_fault(self, exc: BaseException) -> Fault | None:
        """The plugin's map from its SDK's exceptions to a Fault (None: not an SDK error)."""
        return None

    def classify(self, exc: BaseException) -> Fault:
        """Map any SDK or transport exception to a Fault a user can act on."""
        if isinstance(exc, Fault):
            return exc
        fault = self.sdk_fault(exc)
        if fault is not None:
            return fault
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
            return timeout_fault(self.options.timeout_s)
        if isinstance(exc, json.JSONDecodeError):
            return malformed_fault(exc)
        return other_fault(exc)

    def _hint(self, status: int) -> str:
        if status == 401:
            if self.no_key:
                return "this server wants an API key: name the env var that holds it with --api-key-env"
            return f"check the API key in the env var {self.key_env}"
        if status == 403:
            return f"the key in {self.key_env} is not allowed to use {self.model!r} (account, region or plan)"
        return self.not_found_hint.format(model=self.model)

    # -- the engine ------------------------------------------------------------------------
    def generate(self, requests: Sequence[Request], on_response: OnResponse) -> None:
        """Send every request; `on_response` runs in this thread as each one finishes."""
        if not requests:
            return
        if self.options.dry_run:
            from deccp_eval.progress import console
            from deccp_eval.remote.batch import BatchDriver

            plan = BatchDriver(self, self.options.state_db or "").plan(requests) if self.batch_max_requests else None
            console.print(f"dry run: {plan.line() if plan else f'{self.spec}: {len(requests)} requests'}",
                          highlight=False)
            return
        api_key = self.api_key()
        self.sdk()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self._dispatch(requests, on_response, api_key))
            return
        self._generate_in_thread(requests, on_response, api_key)  # called from async code (notebooks)

    async def _dispatch(self, requests: Sequence[Request], on_response: OnResponse, api_key: str | None) -> None:
        """The batch API when asked for (options.batch), else one call per request."""
        if not self.options.batch:
            await self._generate(requests, on_response, api_key)
            return
        driver = self.batch_driver()
        self._secret = api_key
        client = self.make_client(api_key)
        try:
            await driver.run(requests, on_response, client, api_key)
        finally:
            await client.close()

    def _generate_in_thread(self, requests: Sequence[Request], on_response: OnResponse, api_key: str | None) -> None:
        """Inside a running event loop: run ours in a helper thread, hand results back to this one.
        If `on_response` raises (or Ctrl-C arrives), the helper's requests are cancelled before re-raising."""
        results: queue.Queue[Any] = queue.Queue()
        done = object()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()
        main = loop.create_task(self._dispatch(requests, results.put, api_key))

        def target() -> None:
            try:
                loop.run_until_complete(main)
            except BaseException as exc:  # re-raised in the caller's thread below
                failure.append(exc)
            finally:
                loop.close()
                results.put(done)

        worker = threading.Thread(target=target, name="deccp-eval-remote", daemon=True)
        worker.start()
        try:
            while (item := results.get()) is not done:
                on_response(item)
        except BaseException:
            try:
                loop.call_soon_threadsafe(main.cancel)
            except RuntimeError:  # the helper's loop already finished and closed
                pass
            worker.join()
            raise
        worker.join()
        if failure:
            raise failure[0]

    async def _generate(self, requests: Sequence[Request], on_response: OnResponse, api_key: str | None) -> None:
        self._secret = api_key
        policy = self.retry_policy()
        limit = AdaptiveLimit(self.options.max_concurrency, self.spec, grace_s=self.grace_s())
        client = self.make_client(api_key)
        admit = asyncio.Semaphore(2 * self.options.max_concurrency + 8)  # tasks alive, incl. those backing off
        tasks: set[asyncio.Task[None]] = set()
        failure: list[BaseException] = []

        async def work(request: Request) -> None:
            on_response(await self._send(client, request, limit, policy))

        def finished(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            admit.release()  # here, not in work(): a task cancelled before it starts runs no finally
            if not task.cancelled() and task.exception() is not None:
                if not failure:
                    failure.append(task.exception())  # type: ignore[arg-type]
                for other in list(tasks):
                    other.cancel()

        try:
            for request in requests:
                await admit.acquire()
                if failure:
                    break
                task = asyncio.create_task(work(request))
                tasks.add(task)
                task.add_done_callback(finished)
            while tasks:
                await asyncio.wait(list(tasks))
        finally:
            for task in list(tasks):
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            await client.close()
        if failure:
            raise failure[0]

    async def _send(self, client: Any, request: Request, limit: AdaptiveLimit, policy: RetryPolicy) -> Response:
        """One request through the retry policy: a Response, or Response(error=...) when it gives up."""
        from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            retry_after = exc.retry_after if isinstance(exc, Fault) else None
            return policy.wait(state.attempt_number, retry_after, _jitter())

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            wait_s = state.next_action.sleep if state.next_action else 0.0
            if isinstance(exc, Fault):
                after = f", Retry-After {exc.retry_after:g}s" if exc.retry_after is not None else ""
                log.info("%s %s: retry %d/%d after %s (%s%s); waiting %.2fs", self.spec, request.prompt_id,
                         state.attempt_number + 1, policy.attempts, exc.kind, self._scrub(exc.text), after, wait_s)

        retrying = AsyncRetrying(stop=stop_after_attempt(policy.attempts), wait=wait, before_sleep=before_sleep,
                                 retry=retry_if_exception(lambda e: isinstance(e, Fault) and e.retryable),
                                 reraise=True)
        attempts = 0
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    done, latency = await self._attempt(client, request, limit)
        except Fault as fault:
            text = self._scrub(fault.text)
            if fault.kind == "content_filter":
                log.info("%s %s: blocked by the provider's content filter: %s", self.spec, request.prompt_id, text)
                return Response(key=request.key, text="", finish_reason="content_filter")
            if fault.fatal:
                raise RemoteError(f"{self.spec}: {text}") from None
            if fault.retryable:
                text = f"failed after {attempts} attempts; last: {fault.kind}: {text}"
            return Response(key=request.key, error=text)
        if not done.text and not done.reasoning:
            log.info("%s %s: empty content (finish_reason=%s)", self.spec, request.prompt_id, done.finish_reason)
        return Response(key=request.key, text=done.text, reasoning=done.reasoning, finish_reason=done.finish_reason,
                        tokens_in=done.tokens_in, tokens_out=done.tokens_out, latency_s=latency,
                        cost=pricing.cost(self._price, done.tokens_in, done.tokens_out), logprobs=done.logprobs,
                        provider_model=done.provider_model, system_fingerprint=done.system_fingerprint)

    async def _attempt(self, client: Any, request: Request, limit: AdaptiveLimit) -> tuple[Completion, float]:
        async with limit.slot() as epoch:
            t0 = time.perf_counter()
            try:
                done = await _deadline(self.complete(client, request), self.options.timeout_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                fault = self.classify(exc)
                if fault.fatal:
                    limit.abort()
                else:
                    limit.settled()
                if fault.kind == "429":
                    limit.rate_limited(epoch)
                raise fault from None
            latency = time.perf_counter() - t0
        limit.settled()
        limit.succeeded()
        return done, latency

    def _scrub(self, text: str) -> str:
        return scrub(text, [self._secret])


def _jitter() -> float:
    return random.random()
