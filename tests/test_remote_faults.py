"""The backend-neutral Fault: what the engine decides from it, whichever SDK failed."""

import asyncio
import json
from typing import Any

from deccp_eval.backends.contract import BackendOptions
from deccp_eval.backends.remote import Completion, Fault, RemoteBackend
from deccp_eval.backends.remote.faults import http_fault
from deccp_eval.base.schema import Request


class OtherSDKError(Exception):
    """An exception from an SDK outside the Stainless family, with its own shape."""

    def __init__(self, code: int, payload: dict[str, Any]) -> None:
        super().__init__(f"code {code}")
        self.code = code
        self.payload = payload


class OtherBackend(RemoteBackend):
    name = "other"
    sdk_module = "json"  # any importable module: this test never builds a client
    client_class = "JSONDecoder"
    default_key_env = "OTHER_KEY"

    def sdk_fault(self, exc: BaseException) -> Fault | None:
        if isinstance(exc, OtherSDKError):
            return http_fault(exc.code, "https://other.example/v1/chat", exc.payload, {"retry-after": "7"}, self._hint)
        return None

    async def complete(self, client: Any, request: Request) -> Completion:
        raise NotImplementedError


def backend() -> OtherBackend:
    return OtherBackend("m1", BackendOptions(timeout_s=5))


def test_a_plugin_maps_its_own_sdk_errors():
    b = backend()
    rate = b.classify(OtherSDKError(429, {"error": {"message": "slow down"}}))
    assert (rate.kind, rate.retryable, rate.fatal, rate.retry_after) == ("429", True, False, 7.0)
    assert "slow down" in rate.text and "other.example/v1/chat" in rate.text
    auth = b.classify(OtherSDKError(401, {"error": "bad key"}))
    assert auth.fatal and not auth.retryable and "OTHER_KEY" in auth.text  # the hint names the env var, not the key
    blocked = b.classify(OtherSDKError(400, {"error": {"message": "Content Exists Risk"}}))
    assert blocked.kind == "content_filter" and not blocked.retryable
    bad_request = b.classify(OtherSDKError(422, {"detail": "max_tokens too large"}))
    assert (bad_request.kind, bad_request.retryable, bad_request.fatal) == ("HTTP 422", False, False)


def test_transport_errors_without_an_sdk_mapping():
    b = backend()
    assert b.classify(asyncio.TimeoutError()).kind == "timeout"
    assert "5s" in b.classify(TimeoutError()).text
    try:
        json.loads("<html>")
    except json.JSONDecodeError as exc:
        malformed = b.classify(exc)
    assert malformed.kind == "malformed response" and malformed.retryable
    other = b.classify(ValueError("odd"))
    assert (other.kind, other.retryable, other.text) == ("error", False, "ValueError: odd")
    same = Fault("HTTP 503", "x", retryable=True)
    assert b.classify(same) is same
