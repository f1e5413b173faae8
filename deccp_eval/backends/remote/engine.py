"""The async engine every remote API backend shares (retries, accounting, the sync-to-async
bridge), so every SDK behaves the same way.

A subclass implements one API call (`complete`) and how to build its SDK client; this module
does the rest: a bounded, adaptive number of requests in flight; one retry loop (the SDKs' own
retries are off); failures classified once into what a user can act on; token and cost
accounting; and keeping the API key out of everything it writes.

Retry policy: only rate limits (429), server errors (5xx, 408), timeouts, dropped connections
and malformed response bodies are retried, with exponential backoff plus jitter, never sooner
than the server's Retry-After, at most `options.max_retries` attempts in all. 401, 403 and 404
mean the key, the account or the model/URL is wrong for every request alike, so the run stops
at once with the server's message (and, because the first request goes out alone, after one
request). Other 4xx fail only that item. An item that runs out of attempts is stored as an
error, which `run --retry-errors` sends again.

A dead endpoint is the breaker's (remote/breaker.py): nothing reachable before the first answer
(connection refused, DNS, TLS) stops the run at once; an outage later (every request failing)
stops it after `unreachable_s` or `outage_s` without an answer. Either way requests that were never
answered leave no rows, and a rerun resumes.

Knobs in `RemoteBackend.Options` (`--backend-option K=V`, a models file's `options`): `backoff_base_s`
and `backoff_max_s` (also the env var DECCP_EVAL_BACKOFF_BASE_S, for tests and impatient users),
`first_request_grace_s` (how long the first request goes alone, default 2 s), `outage_s` (120 s)
and `unreachable_s` (10 s). None changes an answer, so the fingerprint (endpoint, model, a
plugin's output-changing options) leaves them out; each response keeps the model the provider
says answered and its `system_fingerprint`.

Over 300 lines because the retry loop, the task admission and the thread bridge share one
class's state; splitting them would scatter one request's life over several files.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import json
import logging
import os
import queue
import random
import sys
import threading
import time
from abc import abstractmethod
from collections.abc import Awaitable, Iterable
from types import ModuleType
from typing import Any, ClassVar, Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field

from deccp_eval.backends import pricing
from deccp_eval.backends.contract import Backend, OnResponse, Options, knob
from deccp_eval.backends.remote.batch import BatchDriver, BatchEngine
from deccp_eval.backends.remote.breaker import Breaker, outage_kind
from deccp_eval.backends.remote.faults import (
    Fault,
    RemoteError,
    http_fault,
    malformed_fault,
    other_fault,
    scrub,
    timeout_fault,
    transport_fault,
)
from deccp_eval.backends.remote.limit import AdaptiveLimit
from deccp_eval.backends.remote.provider import BatchAPI, Completion
from deccp_eval.base.errors import MissingDependency, UsageError
from deccp_eval.base.schema import Request, Response, canonical_hash

log = logging.getLogger("deccp_eval")

NO_KEY = "none"  # `--api-key-env none`: the server needs no key (vllm serve, Ollama, llama.cpp)
NO_KEY_PLACEHOLDER = "no-key"  # sent instead, so an SDK never falls back to a real key in its default env var
BACKOFF_ENV = "DECCP_EVAL_BACKOFF_BASE_S"
RETRY_AFTER_CAP_S = 300.0  # a Retry-After beyond this is a server bug; wait this long and try again

T = TypeVar("T")


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
    batch_max_requests: ClassVar[int] = 0  # the provider's batch limits (with batch_api = True)
    batch_max_bytes: ClassVar[int] = 0
    priced_dry_run = True  # `generate` prints the requests (a batch plan) and their estimated cost

    class Options(Options):
        """The engine's knobs: how hard and how fast to try, never what comes back."""

        backoff_base_s: float | None = knob(None, f"first retry wait (default ${BACKOFF_ENV} or 1 s)", ge=0)
        backoff_max_s: float = knob(60.0, "longest wait between retries", ge=0)
        first_request_grace_s: float = knob(2.0, "how long the first request goes alone", ge=0)
        outage_s: float = knob(120.0, "stop the run after this long with no answer while requests fail", gt=0)
        unreachable_s: float = knob(10.0, "the same when no request reaches the server (refused, DNS, TLS)", gt=0)
        batch_poll_s: float | None = knob(
            None, "seconds between batch polls (default $DECCP_EVAL_BATCH_POLL_S or 30)", ge=0
        )
        batch_retry: Literal["sync", "batch"] = knob("sync", "retry failed batch lines synchronously or in a batch")
        batch_max_requests: int | None = knob(None, "requests per batch, below the provider's limit", ge=1)
        batch_max_bytes: int | None = knob(None, "bytes per batch file, below the provider's limit", ge=1)

    opts: Options  # what parse_options() builds: this class's options

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._secret: str | None = None
        self._price = pricing.price_for(self.model, self.options.prices)

    # -- what subclasses provide -----------------------------------------------------------
    def make_client(self, api_key: str | None) -> Any:
        """The SDK's async client with its own retries off (max_retries=0) and our timeout. An explicit
        key (a placeholder when none is needed) stops the SDK reading keys or profiles on its own."""
        kwargs: dict[str, Any] = {
            "api_key": api_key or NO_KEY_PLACEHOLDER,
            "max_retries": 0,
            "timeout": self.options.timeout_s,
        }
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
        return canonical_hash({"spec": self.spec, "endpoint": self.endpoint(), "options": self.opts.output_options()})[
            :32
        ]

    # -- the provider's batch API (provider.BatchAPI, when a subclass has one; batch.py drives it) -----
    def batch_call(self, method: str, batch_id: str) -> Any:
        """One batch call (`batch_poll` or `batch_cancel`) outside a run, for `deccp-eval batches`."""
        if not isinstance(self, BatchAPI):
            raise UsageError(f"{self.spec}: this backend has no batch API")

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

    def batch_driver(self) -> BatchDriver:
        if not self.batch_api:
            from deccp_eval.base import pluginmanager

            have = ", ".join(sorted(n for n, r in pluginmanager.backends().items() if r.obj.batch_api))
            raise UsageError(f"{self.spec}: --batch needs a backend with a batch API ({have})")
        if not self.options.state_db:
            raise UsageError(f"{self.spec}: --batch needs a store to keep the batch ids in (state_db)")
        return BatchDriver(cast(BatchEngine, self), self.options.state_db)

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
                f"models file, or pass --api-key-env {NO_KEY} for a local server that needs no key."
            )
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
            return RetryPolicy(
                attempts=self.options.max_retries,
                base_s=float(os.environ.get(BACKOFF_ENV, 1.0)) if base is None else base,
                max_s=self.opts.backoff_max_s,
            )
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
    streams = True

    def generate(self, requests: Iterable[Request], on_response: OnResponse) -> None:
        """Send every request; `on_response` runs in this thread as each one finishes. `requests`
        may be a lazy iterable: it is read as slots free up, never all at once."""
        it = iter(requests)
        first = next(it, None)
        if first is None:
            return
        requests = itertools.chain((first,), it)
        if self.options.dry_run or self.options.batch:  # both need the whole list
            requests = list(requests)
        if self.options.dry_run:
            from deccp_eval.base.progress import console  # rich loads only when something is printed

            assert isinstance(requests, list)  # made one above
            plan = (
                BatchDriver(self, self.options.state_db or "").plan(requests)
                if self.batch_api and isinstance(self, BatchAPI)
                else None
            )
            console.print(
                f"dry run: {plan.line() if plan else f'{self.spec}: {len(requests)} requests'}", highlight=False
            )
            return
        api_key = self.api_key()
        self.sdk()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self._dispatch(requests, on_response, api_key))
            return
        # Called from async code (notebooks): the helper thread must not pull a lazy iterable that
        # reads the store through this thread's connection, so everything is read here first.
        self._generate_in_thread(list(requests), on_response, api_key)

    async def _dispatch(self, requests: Iterable[Request], on_response: OnResponse, api_key: str | None) -> None:
        """The batch API when asked for (options.batch), else one call per request."""
        if not self.options.batch:
            await self._generate(requests, on_response, api_key)
            return
        driver = self.batch_driver()
        self._secret = api_key
        client = self.make_client(api_key)
        try:
            await driver.run(requests if isinstance(requests, list) else list(requests), on_response, client, api_key)
        finally:
            await client.close()

    def _generate_in_thread(self, requests: Iterable[Request], on_response: OnResponse, api_key: str | None) -> None:
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

    async def _generate(self, requests: Iterable[Request], on_response: OnResponse, api_key: str | None) -> None:
        self._secret = api_key
        policy = self.retry_policy()
        limit = AdaptiveLimit(self.options.max_concurrency, self.spec, grace_s=self.grace_s())
        breaker = Breaker(self.opts.outage_s, self.opts.unreachable_s)
        client = self.make_client(api_key)
        admit = asyncio.Semaphore(2 * self.options.max_concurrency + 8)  # tasks alive, incl. those backing off
        tasks: set[asyncio.Task[None]] = set()
        failure: list[BaseException] = []

        async def work(request: Request) -> None:
            on_response(await self._send(client, request, limit, policy, breaker))

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
            breaker.untried = False
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

    async def _send(
        self, client: Any, request: Request, limit: AdaptiveLimit, policy: RetryPolicy, breaker: Breaker
    ) -> Response:
        """One request through the retry policy: a Response, or Response(error=...) when it gives up.
        A request failing while every other one fails too is not given up on: the breaker ends that
        (RemoteError), so an outage leaves no error rows, only requests a rerun sends again."""
        key = request.key
        attempts = 0
        while True:
            attempts += 1
            try:
                done, latency = await self._attempt(client, request, limit)
                break
            except Fault as fault:
                text = self._scrub(fault.text)
                if fault.kind == "content_filter":
                    log.info("%s %s: blocked by the provider's content filter: %s", self.spec, request.prompt_id, text)
                    breaker.forget(key)
                    return Response(key=key, text="", finish_reason="content_filter")
                if fault.fatal:
                    raise RemoteError(f"{self.spec}: {text}") from None
                trip = breaker.failure(key, fault)
                if trip is not None:
                    limit.abort()
                    raise RemoteError(self._tripped(self._scrub(trip), breaker)) from None
                if not fault.retryable or (attempts >= policy.attempts and not breaker.holding(key, fault)):
                    breaker.forget(key)
                    if fault.retryable:
                        text = f"failed after {attempts} attempts; last: {fault.kind}: {text}"
                    return Response(key=key, error=text)
                wait = policy.wait(min(attempts, policy.attempts), fault.retry_after, _jitter())
                if outage_kind(fault):  # wake up when the breaker would trip, to trip it on time
                    wait = min(wait, max(breaker.remaining(), 0.05))
                after = f", Retry-After {fault.retry_after:g}s" if fault.retry_after is not None else ""
                log.info(
                    "%s %s: retry %d after %s (%s%s); waiting %.2fs",
                    self.spec,
                    request.prompt_id,
                    attempts + 1,
                    fault.kind,
                    text,
                    after,
                    wait,
                )
                await asyncio.sleep(wait)
        breaker.success(key, breaker.clock() - latency)
        if not done.text and not done.reasoning:
            log.info("%s %s: empty content (finish_reason=%s)", self.spec, request.prompt_id, done.finish_reason)
        return Response(
            key=key,
            text=done.text,
            reasoning=done.reasoning,
            finish_reason=done.finish_reason,
            tokens_in=done.tokens_in,
            tokens_out=done.tokens_out,
            latency_s=latency,
            cost=pricing.cost(self._price, done.tokens_in, done.tokens_out),
            logprobs=done.logprobs,
            provider_model=done.provider_model,
            system_fingerprint=done.system_fingerprint,
        )

    def _tripped(self, why: str, breaker: Breaker) -> str:
        """The one line a stopped run prints: what failed, where, and what to do."""
        url = self.endpoint()
        if not breaker.answered:
            return f"{self.spec}: {why} — {self._unreachable_hint(why)}"
        return (
            f"{self.spec}: {url}: {why}. Stopped; the answers so far are stored: rerun the same command to "
            f"resume (--backend-option outage_s=SECONDS waits longer)"
        )

    def _unreachable_hint(self, why: str) -> str:
        url = self.endpoint()
        if why.startswith("connection refused"):
            return f"nothing is listening at {url}: start the server, or fix --base-url"
        if why.startswith("DNS"):
            return f"the host in {url} does not resolve: check --base-url, your network or VPN"
        if why.startswith("TLS"):
            return f"check http:// vs https:// in --base-url ({url}) and the server's certificate"
        return f"check --base-url ({url}) and your network"

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

    async def post_json(self, client: Any, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
        """POST `body` as JSON to base URL + `path` through the SDK client's own HTTP pool, and read the
        answer as plain JSON. The SDK's request building and response parsing cost ~1 ms of CPU per
        call, which caps a run at 32+ requests in flight; this path costs a fraction of that. Faults
        are classified the same way (`http_fault`, `transport_fault`). An SDK without that pool
        (`_client`) goes through its own `post`."""
        http = getattr(client, "_client", None)
        if http is None or not callable(getattr(http, "post", None)):
            return await client.post(path, body=body, cast_to=object)
        url = str(client.base_url).rstrip("/") + path
        try:
            resp = await http.post(url, content=json.dumps(body).encode(), headers=headers)
        except (asyncio.CancelledError, Fault):
            raise
        except Exception as exc:
            fault = transport_fault(exc, url, self.options.timeout_s)
            if fault is None:
                raise
            raise fault from None
        if resp.status_code >= 400:
            try:
                data: Any = json.loads(resp.content)
            except ValueError:
                data = resp.text
            raise http_fault(resp.status_code, url, data, resp.headers, self._hint)
        try:
            return json.loads(resp.content)
        except ValueError as exc:
            raise malformed_fault(exc) from None

    def _scrub(self, text: str) -> str:
        return scrub(text, [self._secret])


def _jitter() -> float:
    return random.random()
