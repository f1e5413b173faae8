"""Failures, classified once: a backend-neutral Fault and helpers that build one from what any HTTP API
returns (status, body, headers). Each API plugin maps its SDK's exceptions onto these helpers
(`sdk_fault`); the engine's retry policy and messages look only at the Fault.
"""

from __future__ import annotations

import email.utils
import http
import json
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from deccp_eval.base.errors import UsageError

_MIN_SECRET = 4  # shorter "keys" would scrub ordinary words out of messages
# A provider that blocks the question itself answers 400 with one of these; that is censorship to
# measure, not an error: it is stored as an empty answer with finish_reason "content_filter".
CONTENT_FILTER_MARKERS = (
    "data_inspection_failed",
    "content exists risk",
    "content_filter",
    "content_policy_violation",
    "content management policy",
    "inappropriate content",
    "sensitive_words_detected",
)


class Fault(Exception):
    """One failed attempt, classified once so the retry policy and the messages ignore which SDK failed."""

    def __init__(
        self,
        kind: str,
        text: str,
        *,
        retryable: bool,
        fatal: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(text)
        self.kind = kind  # "429", "HTTP 503", "timeout", "connection error", "malformed response", ...
        self.text = text
        self.retryable = retryable
        self.fatal = fatal
        self.retry_after = retry_after
        self.status = status


class RemoteError(UsageError):
    """The endpoint refuses every request alike (bad key, no access, unknown model or URL): stop the run."""


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


def http_fault(status: int, url: str, body: Any, headers: Any, hint: Callable[[int], str]) -> Fault:
    """An HTTP error answer -> Fault: 429, 5xx and 408 retry (after Retry-After); a content-filter 400 is
    a measured block; 401/403/404 are fatal for the whole run (with `hint(status)`); other 4xx fail one item."""
    msg = server_message(body) or ""
    text = f"{status} {status_phrase(status)} from {url}" + (f": {msg}" if msg else "")
    retry_after = parse_retry_after(headers)
    if status == 429:
        return Fault("429", text, retryable=True, retry_after=retry_after, status=status)
    if status >= 500 or status == 408:
        return Fault(f"HTTP {status}", text, retryable=True, retry_after=retry_after, status=status)
    if status == 400 and any(m in msg.lower() for m in CONTENT_FILTER_MARKERS):
        return Fault("content_filter", text, retryable=False, status=status)
    if status in (401, 403, 404):
        return Fault(f"HTTP {status}", f"{text} — {hint(status)}", retryable=False, fatal=True, status=status)
    return Fault(f"HTTP {status}", text, retryable=False, status=status)


def timeout_fault(timeout_s: float, url: str = "") -> Fault:
    return Fault("timeout", f"no answer within {timeout_s:g}s" + (f" from {url}" if url else ""), retryable=True)


UNREACHABLE = "unreachable"  # the kind of a request that never reached a server (refused, DNS, TLS)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes, outermost first (SDKs wrap httpx, which wraps the OS error)."""
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__  # httpcore hides its OSError as a suppressed context
    return out


def unreachable_reason(exc: BaseException) -> str | None:
    """Why a request never reached a server: "connection refused", "DNS lookup failed", "TLS
    handshake failed" or "cannot connect"; None for a connection that was made and then dropped."""
    import socket
    import ssl

    chain = _chain(exc)
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return "TLS handshake failed"
    if any(isinstance(e, socket.gaierror) for e in chain):
        return "DNS lookup failed"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    if any(type(e).__name__ == "ConnectError" for e in chain):  # httpx / httpcore, whichever the SDK vendors
        return "cannot connect"
    return None


def connection_fault(exc: BaseException, url: str) -> Fault:
    """A transport failure: `unreachable` when nothing answered at all (the engine's circuit breaker
    decides how long that is worth retrying), else a dropped connection, retried like a 5xx."""
    causes = [e for e in _chain(exc)[1:] if str(e)]
    os_errors = [e for e in causes if isinstance(e, OSError)]  # the innermost says most ("[Errno 111] ...")
    cause = (os_errors or causes or [None])[-1]
    detail = f"{type(cause).__name__}: {cause}" if cause else str(exc)
    reason = unreachable_reason(exc)
    if reason:
        return Fault(UNREACHABLE, f"{reason} at {url}: {detail}", retryable=True)
    return Fault("connection error", f"connection error with {url}: {detail}", retryable=True)


def transport_fault(exc: BaseException, url: str, timeout_s: float) -> Fault | None:
    """An httpx transport exception (from the engine's direct HTTP path) -> Fault; None otherwise.
    Matched by class name so the `httpx` an SDK vendors under another name is matched too."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "TimeoutException" in names:
        return timeout_fault(timeout_s, url)
    if "TransportError" in names or "HTTPError" in names:
        return connection_fault(exc, url)
    return None


def malformed_fault(exc: BaseException) -> Fault:
    return Fault("malformed response", f"malformed response body ({type(exc).__name__}: {exc})"[:400], retryable=True)


def other_fault(exc: BaseException) -> Fault:
    return Fault("error", f"{type(exc).__name__}: {exc}"[:500], retryable=False)


def stainless_fault(sdk: Any, exc: BaseException, timeout_s: float, hint: Callable[[int], str]) -> Fault | None:
    """The exception family of the Stainless-generated SDKs (`openai`, `anthropic` share it:
    APIStatusError, APITimeoutError, APIConnectionError, APIResponseValidationError); None otherwise."""
    if isinstance(exc, sdk.APIStatusError):
        return http_fault(int(exc.status_code), url_of(exc.response.request), exc.body, exc.response.headers, hint)
    if isinstance(exc, sdk.APITimeoutError):
        return timeout_fault(timeout_s, url_of(getattr(exc, "request", None)))
    if isinstance(exc, sdk.APIConnectionError):
        return connection_fault(exc, url_of(exc.request))
    if isinstance(exc, sdk.APIResponseValidationError):
        return malformed_fault(exc)
    return None


def url_of(request: Any) -> str:
    """The request URL without its query string (where some gateways put keys)."""
    url = getattr(request, "url", None)
    if url is None:
        return ""
    return str(url).split("?", 1)[0]
