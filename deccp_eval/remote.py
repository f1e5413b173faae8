"""The async engine every remote API backend shares, so both SDKs behave the same way.

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

Knobs in BackendOptions.extra (`--backend-option K=V`, a models file's `options`): `backoff_base_s`
and `backoff_max_s` (also the env var DECCP_EVAL_BACKOFF_BASE_S, for tests and impatient users),
`first_request_grace_s` (how long the first request goes alone, default 2 s).
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import http
import importlib
import json
import logging
import os
import queue
import random
import re
import sys
import threading
import time
from abc import abstractmethod
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any, AsyncIterator, Awaitable, ClassVar, Sequence, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from deccp_eval import pricing
from deccp_eval.backend import Backend, OnResponse
from deccp_eval.errors import MissingDependency, UsageError
from deccp_eval.schema import Request, Response, TokenLogprob

log = logging.getLogger("deccp_eval")

NO_KEY = "none"  # `--api-key-env none`: the server needs no key (vllm serve, Ollama, llama.cpp)
NO_KEY_PLACEHOLDER = "no-key"  # sent instead, so an SDK never falls back to a real key in its default env var
BACKOFF_ENV = "DECCP_EVAL_BACKOFF_BASE_S"
RETRY_AFTER_CAP_S = 300.0  # a Retry-After beyond this is a server bug; wait this long and try again
_MIN_SECRET = 4  # shorter "keys" would scrub ordinary words out of messages
# A provider that blocks the question itself answers 400 with one of these; that is censorship to
# measure, not an error: it is stored as an empty answer with finish_reason "content_filter".
CONTENT_FILTER_MARKERS = ("data_inspection_failed", "content exists risk", "content_filter", "content_policy_violation",
                          "content management policy", "inappropriate content", "sensitive_words_detected")

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


class Fault(Exception):
    """One failed attempt, classified once so the retry policy and the messages ignore which SDK failed."""

    def __init__(self, kind: str, text: str, *, retryable: bool, fatal: bool = False,
                 retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(text)
        self.kind = kind  # "429", "HTTP 503", "timeout", "connection error", "malformed response", ...
        self.text = text
        self.retryable = retryable
        self.fatal = fatal
        self.retry_after = retry_after
        self.status = status


class RemoteError(UsageError):
    """The endpoint refuses every request alike (bad key, no access, unknown model or URL): stop the run."""


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


def scrub(text: str, secrets: Sequence[str | None]) -> str:
    """Replace every secret in `text` with *** (defence in depth: servers echo keys in errors)."""
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET and secret in text:
            text = text.replace(secret, "***")
    return text


def parse_retry_after(headers: Any) -> float | None:
    """Seconds from `retry-after-ms`, or `retry-after` as seconds or an HTTP date; None when absent."""
    if headers is None:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def server_message(body: Any, limit: int = 300) -> str:
    """The human part of an error body across providers: {"error": {"message"}}, {"error": "..."},
    {"message"}, {"detail"} (FastAPI), or plain text."""
    msg: Any = None
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or err.get("type")
        elif isinstance(err, str):
            msg = err
        msg = msg or body.get("message") or body.get("detail")
    elif isinstance(body, (str, bytes)):
        msg = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if msg is None:
        return ""
    if not isinstance(msg, str):
        msg = json.dumps(msg, ensure_ascii=False)
    msg = re.sub(r"\s+", " ", msg).strip()
    return msg[:limit] + ("..." if len(msg) > limit else "")


def status_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return {529: "Overloaded"}.get(status, "Error")


class AdaptiveLimit:
    """At most `limit` requests in flight. The first request goes out alone, so a bad key or model
    costs one request and one clear error; the others follow when it comes back, or after `grace_s`
    (a slow model's first answer can take a minute: auth and model errors come back in well under
    the grace). Then up to `maximum`; a 429 halves the limit (once per wave of requests started
    before the last cut) and each `limit` successes in a row raise it by one."""

    def __init__(self, maximum: int, label: str = "", grace_s: float = 2.0) -> None:
        self.maximum = maximum
        self.limit = 1
        self.in_flight = 0
        self.label = label
        self.grace_s = grace_s
        self._grace: asyncio.TimerHandle | None = None
        self._opened = False
        self._aborted = False
        self._epoch = 0
        self._successes = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[int]:
        """Hold one of the `limit` places for one attempt; yields the epoch it started in."""
        await self._acquire()
        try:
            yield self._epoch
        finally:
            self.in_flight -= 1
            self._wake()

    async def _acquire(self) -> None:
        while self.in_flight >= self.limit or self._aborted:
            if self._aborted:
                raise asyncio.CancelledError()
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._wake()  # pass the place we were given to someone else
                raise
        self.in_flight += 1
        if self._grace is None and not self._opened:
            self._grace = asyncio.get_running_loop().call_later(self.grace_s, self.settled)

    def _wake(self) -> None:
        free = self.limit - self.in_flight
        while free > 0 and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                free -= 1

    def abort(self) -> None:
        """A fatal error (bad key, unknown model): no further attempt may start."""
        self._aborted = True
        if self._grace is not None:
            self._grace.cancel()
        while self._waiters:
            self._waiters.popleft().cancel()

    def settled(self) -> None:
        """The first attempt came back with anything but a fatal error (or the grace ran out): open up."""
        if not self._opened and not self._aborted:
            self._opened = True
            self.limit = self.maximum
            self._wake()

    def succeeded(self) -> None:
        self._successes += 1
        if self._successes >= self.limit and self.limit < self.maximum:
            self.limit += 1
            self._successes = 0
            self._wake()

    def rate_limited(self, epoch: int) -> None:
        if epoch != self._epoch or not self._opened:
            return  # started before the last cut (that wave was cut once already), or before the gate opened
        self._epoch += 1
        self._successes = 0
        new = max(1, self.limit // 2)
        if new < self.limit:
            log.info("%s: 429 from the server, concurrency %d -> %d", self.label, self.limit, new)
        self.limit = new


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
    not_found_hint: ClassVar[str] = "check the model name {model!r} and the base URL"

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
        self.api_key()
        self.retry_policy()
        self.grace_s()

    def grace_s(self) -> float:
        """How long the first request goes alone before the others follow (AdaptiveLimit)."""
        try:
            value = float(self.options.extra.get("first_request_grace_s", 2.0))
        except (TypeError, ValueError):
            value = -1.0
        if value < 0:
            raise UsageError(f"{self.spec}: first_request_grace_s must be a number of seconds >= 0")
        return value

    def retry_policy(self) -> RetryPolicy:
        extra = self.options.extra
        base = extra.get("backoff_base_s", os.environ.get(BACKOFF_ENV, 1.0))
        try:
            return RetryPolicy(attempts=self.options.max_retries, base_s=float(base),
                               max_s=float(extra.get("backoff_max_s", 60.0)))
        except (TypeError, ValueError):  # pydantic's ValidationError is a ValueError
            raise UsageError(f"{self.spec}: backoff_base_s / backoff_max_s / {BACKOFF_ENV} must be numbers >= 0") \
                from None

    # -- classification --------------------------------------------------------------------
    def classify(self, exc: BaseException) -> Fault:
        """Map any SDK or transport exception to a Fault a user can act on."""
        if isinstance(exc, Fault):
            return exc
        sdk = self.sdk()
        if isinstance(exc, sdk.APIStatusError):
            status = int(exc.status_code)
            url = _url(exc.response.request)
            msg = server_message(exc.body) or ""
            text = f"{status} {status_phrase(status)} from {url}" + (f": {msg}" if msg else "")
            retry_after = parse_retry_after(exc.response.headers)
            if status == 429:
                return Fault("429", text, retryable=True, retry_after=retry_after, status=status)
            if status >= 500 or status == 408:
                return Fault(f"HTTP {status}", text, retryable=True, retry_after=retry_after, status=status)
            if status == 400 and any(m in msg.lower() for m in CONTENT_FILTER_MARKERS):
                return Fault("content_filter", text, retryable=False, status=status)
            if status in (401, 403, 404):
                return Fault(f"HTTP {status}", f"{text} — {self._hint(status)}", retryable=False, fatal=True,
                             status=status)
            return Fault(f"HTTP {status}", text, retryable=False, status=status)
        if isinstance(exc, (sdk.APITimeoutError, TimeoutError, asyncio.TimeoutError)):
            where = _url(getattr(exc, "request", None))
            return Fault("timeout", f"no answer within {self.options.timeout_s:g}s" + (f" from {where}" if where else ""),
                         retryable=True)
        if isinstance(exc, sdk.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            detail = f"{type(cause).__name__}: {cause}" if cause else str(exc)
            return Fault("connection error", f"connection error with {_url(exc.request)}: {detail}", retryable=True)
        if isinstance(exc, (json.JSONDecodeError, sdk.APIResponseValidationError)):
            return Fault("malformed response", f"malformed response body ({type(exc).__name__}: {exc})"[:400],
                         retryable=True)
        return Fault("error", f"{type(exc).__name__}: {exc}"[:500], retryable=False)

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
        api_key = self.api_key()
        self.sdk()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self._generate(requests, on_response, api_key))
            return
        self._generate_in_thread(requests, on_response, api_key)  # called from async code (notebooks)

    def _generate_in_thread(self, requests: Sequence[Request], on_response: OnResponse, api_key: str | None) -> None:
        """Inside a running event loop: run ours in a helper thread, hand results back to this one.
        If `on_response` raises (or Ctrl-C arrives), the helper's requests are cancelled before re-raising."""
        results: queue.Queue[Any] = queue.Queue()
        done = object()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()
        main = loop.create_task(self._generate(requests, results.put, api_key))

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
                        cost=pricing.cost(self._price, done.tokens_in, done.tokens_out), logprobs=done.logprobs)

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


def _url(request: Any) -> str:
    """The request URL without its query string (where some gateways put keys)."""
    url = getattr(request, "url", None)
    if url is None:
        return ""
    return str(url).split("?", 1)[0]


def _jitter() -> float:
    return random.random()
