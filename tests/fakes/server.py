"""What both fake provider servers share: a threaded HTTP/1.1 server on 127.0.0.1 (random port),
request counting, deterministic answers, and faults injected on demand.

Faults (`FaultPlan`):
  429        status 429 with a Retry-After header
  500, 503   server errors (529 too, Anthropic's "overloaded")
  reset      headers and a third of the body, then the connection is reset (RST)
  slow       no answer until long after the client's timeout
  malformed  status 200, JSON content type, a truncated JSON body
  empty      status 200 with an empty answer, on every attempt (not a fault: the client stores it)
  400        a bad request whose message echoes the request's credentials (a leaky server)
  blocked    400 with a provider's content-filter message (the question itself is censored)

`outage(seconds, status, after)` answers every request with one status for a while (from the first
request, or once `after` answers went out), then recovers.

`fail_first` is the fraction of distinct prompts whose first attempt fails, spread evenly over
arrival order and cycling through `kinds`, so a run of N prompts sees exactly round(N x fraction)
faults and every kind. `always` maps a prompt substring to a fault sent on every attempt.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULT_KINDS: tuple[str, ...] = ("429", "500", "503", "reset", "slow", "malformed", "empty")


def answer_for(prompt: str, system: str | None = None) -> str:
    """The deterministic answer the fakes give, so tests can check what was stored."""
    return (f"[{system}] " if system else "") + f"ECHO {prompt}"


def reasoning_for(prompt: str) -> str:
    return f"thinking about {prompt}"


def n_tokens(*texts: str | None) -> int:
    return sum(len(t.split()) for t in texts if t)


@dataclass
class FaultPlan:
    fail_first: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    always: dict[str, str] = field(default_factory=dict)
    retry_after: str = "1"
    slow_s: float = 5.0

    def first_attempt_fault(self, index: int) -> bool:
        """True for exactly round(fraction x N) of the first N distinct prompts, evenly spread."""
        per_mille = round(self.fail_first * 1000)
        return ((index + 1) * per_mille) // 1000 > (index * per_mille) // 1000


class FakeServer(ThreadingHTTPServer):
    """Subclasses set `path` and implement `success`, `error_body` and `prompt_of`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # the benchmark opens 32+ connections at once
    path: str = ""

    def __init__(
        self,
        plan: FaultPlan | None = None,
        latency_s: float = 0.0,
        required_key: str | None = None,
        models: set[str] | None = None,
        port: int = 0,
    ) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.plan = plan or FaultPlan()
        self.latency_s = latency_s
        self.required_key = required_key
        self.models = models  # None: any model exists
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.requests = 0  # requests read in full
        self.arrivals = 0  # requests whose headers arrived, even if the client hung up before the body
        self.per_prompt: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.fault_prompts: dict[str, list[str]] = {}
        self.credentials: set[str] = set()
        self.bodies: list[dict[str, Any]] = []
        self._distinct = 0
        self._fault_index = 0
        self._thread: threading.Thread | None = None
        self._outage: tuple[int, float, int] | None = None  # (after this many answers, for seconds, status)
        self._outage_ends: float | None = None
        self.answered = 0  # successful answers sent

    def outage(self, seconds: float, status: int = 503, after: int = 0) -> None:
        """Answer every request with `status` for `seconds`, starting once `after` answers went out
        (0: from the first request); `seconds=inf` never recovers."""
        with self.lock:
            self._outage = (after, seconds, status)
            self._outage_ends = None

    def outage_status(self) -> int | None:
        """The status to send now, when an outage is on."""
        with self.lock:
            if self._outage is None:
                return None
            after, seconds, status = self._outage
            if self._outage_ends is None:
                if self.answered < after:
                    return None
                self._outage_ends = time.monotonic() + seconds
            if time.monotonic() < self._outage_ends:
                self.requests += 1
                self.faults[f"outage {status}"] += 1
                return status
            return None

    # -- wire format (subclasses) ----------------------------------------------------------
    def prompt_of(self, body: dict[str, Any]) -> tuple[str, str | None]:
        raise NotImplementedError

    def success(self, body: dict[str, Any], prompt: str, system: str | None, empty: bool) -> dict[str, Any]:
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        raise NotImplementedError

    def route(self, handler: _Handler, method: str, raw: bytes) -> bool:
        """Other endpoints (the batch APIs, fakes/batch.py); True when handled."""
        return False

    def credential(self, headers: Any) -> str | None:
        auth = headers.get("Authorization") or ""
        return auth.removeprefix("Bearer ").strip() or headers.get("x-api-key")

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> FakeServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- decisions -----------------------------------------------------------------------------
    def decide(self, prompt: str) -> str | None:
        """Count the request and pick its fault, if any."""
        with self.lock:
            self.requests += 1
            self.per_prompt[prompt] += 1
            fault = next((kind for needle, kind in self.plan.always.items() if needle in prompt), None)
            if fault is None and prompt in self.fault_prompts.get("empty", ()):
                return "empty"  # a model that answers nothing does so every time
            if fault is None and self.per_prompt[prompt] == 1:
                index = self._distinct
                self._distinct += 1
                if self.plan.first_attempt_fault(index):
                    fault = self.plan.kinds[self._fault_index % len(self.plan.kinds)]
                    self._fault_index += 1
            if fault:
                self.faults[fault] += 1
                self.fault_prompts.setdefault(fault, []).append(prompt)
            return fault


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body wait on the client's delayed ACK (~40 ms)
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        srv = self.server
        with srv.lock:
            srv.arrivals += 1
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if srv.route(self, "POST", raw):
            return
        if self.path.split("?")[0] != srv.path:
            self._json(404, srv.error_body(404, f"no route {self.path}"))
            return
        try:
            body = json.loads(raw)
        except ValueError:  # the client hung up before sending its body
            self.close_connection = True
            return
        key = srv.credential(self.headers)
        with srv.lock:
            srv.credentials.add(key or "")
            srv.bodies.append(body)
        if srv.required_key is not None and key != srv.required_key:
            with srv.lock:
                srv.requests += 1
            self._json(401, srv.error_body(401, f"Incorrect API key provided: {key}"))
            return
        if srv.models is not None and body.get("model") not in srv.models:
            with srv.lock:
                srv.requests += 1
            self._json(404, srv.error_body(404, f"The model `{body.get('model')}` does not exist"))
            return
        down = srv.outage_status()
        if down is not None:
            self._json(down, srv.error_body(down, "injected outage"))
            return
        prompt, system = srv.prompt_of(body)
        fault = srv.decide(prompt)
        if fault in ("429", "500", "503", "529"):
            headers = {"Retry-After": srv.plan.retry_after} if fault == "429" else {}
            self._json(int(fault), srv.error_body(int(fault), f"injected {fault} (key {key})"), headers)
            return
        if fault == "blocked":  # a provider's own censorship (DashScope's wording)
            self._json(
                400, srv.error_body(400, "data_inspection_failed: Input data may contain inappropriate content.")
            )
            return
        if fault == "400":
            self._json(400, srv.error_body(400, f"Bad request for Authorization: Bearer {key}"))
            return
        if fault == "slow":
            srv.stopping.wait(srv.plan.slow_s)
        elif srv.latency_s:
            time.sleep(srv.latency_s)
        payload = json.dumps(srv.success(body, prompt, system, empty=fault == "empty")).encode()
        if fault == "malformed":
            self._send(200, payload[: len(payload) // 2], "application/json")
        elif fault == "reset":
            self._reset(payload)
        else:
            self._send(200, payload, "application/json")
            with srv.lock:
                srv.answered += 1

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        srv = self.server
        with srv.lock:
            srv.arrivals += 1
        if not srv.route(self, "GET", b""):
            self._json(404, srv.error_body(404, f"no route {self.path}"))

    def _json(self, status: int, obj: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json", headers)

    def _send(self, status: int, data: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout): nothing to do

    def _reset(self, payload: bytes) -> None:
        """Promise the whole body, send a third of it, then reset the connection."""
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 3])
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True


def serve_main(server_cls: type[FakeServer]) -> None:
    """`python -m fakes.openai_server --latency 0.1`: serve until killed, print the URL first."""
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--fail-first", type=float, default=0.0)
    args = ap.parse_args()
    server = server_cls(FaultPlan(fail_first=args.fail_first), latency_s=args.latency)
    print(server.url, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
