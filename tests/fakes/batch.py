"""Batch endpoints for the fake servers, in the real wire formats:

OpenAI:    POST /v1/files (multipart, purpose=batch), POST /v1/batches, GET /v1/batches/{id},
           POST /v1/batches/{id}/cancel, GET /v1/files/{id}/content (output and error JSONL files)
Anthropic: POST /v1/messages/batches, GET /v1/messages/batches/{id}, POST .../{id}/cancel,
           GET .../{id}/results (JSONL)

Behaviour (`BatchBook`, kept apart from the server so it survives a restart on the same port):
a batch completes once `polls_to_complete` polls have seen it and `delay_s` has passed, with
partial counts before; `invalid_models` fail validation (OpenAI `failed` with errors; Anthropic
answers 400 on create like the real API); a prompt containing an `error_needles` entry errors on its
first batch line (later lines and synchronous calls answer); `expire` ends every batch as expired
with only the first half of its lines answered. Each line's answer is the server's synchronous one.
"""

from __future__ import annotations

import email.parser
import itertools
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

_ids = itertools.count(1)


@dataclass
class FakeBatch:
    id: str
    lines: list[dict[str, Any]]  # OpenAI: the JSONL lines; Anthropic: the `requests`
    created: float
    input_file_id: str | None = None
    polls: int = 0
    status: str = "in_progress"
    error: str | None = None
    results: dict[str, dict[str, Any]] | None = None  # custom_id -> the result line, once ended
    output_file_id: str | None = None
    error_file_id: str | None = None
    canceled: bool = False


@dataclass
class BatchBook:
    delay_s: float = 0.0
    polls_to_complete: int = 1
    invalid_models: set[str] = field(default_factory=set)
    error_needles: tuple[str, ...] = ()
    expire: bool = False
    batches: dict[str, FakeBatch] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    submitted: Counter[str] = field(default_factory=Counter)  # custom_id -> batch lines that carried it
    creates: int = 0
    errored_once: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")


class BatchRoutes:
    """Mixed into a FakeServer subclass before it: `provider` is "openai" or "anthropic"."""

    provider: str = "openai"
    book: BatchBook

    def attach(self, book: BatchBook | None) -> None:
        self.book = book or BatchBook()

    # -- routing ---------------------------------------------------------------------------------
    def route(self, handler: Any, method: str, raw: bytes) -> bool:
        path = handler.path.split("?")[0]
        parts = [p for p in path.split("/") if p]
        if self.provider == "openai":
            if method == "POST" and parts == ["v1", "files"]:
                return self._upload(handler, raw)
            if parts[:2] == ["v1", "batches"]:
                if method == "POST" and len(parts) == 2:
                    return self._create(handler, json.loads(raw)["input_file_id"], None)
                if method == "GET" and len(parts) == 3:
                    return self._retrieve(handler, parts[2])
                if method == "POST" and len(parts) == 4 and parts[3] == "cancel":
                    return self._cancel(handler, parts[2])
            if method == "GET" and parts[:2] == ["v1", "files"] and len(parts) == 4 and parts[3] == "content":
                data = self.book.files.get(parts[2])
                if data is None:
                    handler._json(404, self.error_body(404, f"No such File object: {parts[2]}"))
                else:
                    handler._send(200, data, "application/octet-stream")
                return True
            return False
        if parts[:3] == ["v1", "messages", "batches"]:
            if method == "POST" and len(parts) == 3:
                return self._create(handler, None, json.loads(raw)["requests"])
            if method == "GET" and len(parts) == 4:
                return self._retrieve(handler, parts[3])
            if method == "POST" and len(parts) == 5 and parts[4] == "cancel":
                return self._cancel(handler, parts[3])
            if method == "GET" and len(parts) == 5 and parts[4] == "results":
                batch = self.book.batches.get(parts[3])
                if batch is None or batch.results is None:
                    handler._json(404, self.error_body(404, "results not ready"))
                else:
                    data = "".join(json.dumps(r) + "\n" for r in batch.results.values()).encode()
                    handler._send(200, data, "application/binary")
                return True
        return False

    # -- endpoints -------------------------------------------------------------------------------
    def _upload(self, handler: Any, raw: bytes) -> bool:
        ctype = handler.headers.get("Content-Type", "")
        msg = email.parser.BytesParser().parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + raw)
        data, purpose = b"", None
        for part in msg.get_payload():
            name = part.get_param("name", header="content-disposition")
            if name == "file":
                data = part.get_payload(decode=True)
            elif name == "purpose":
                purpose = part.get_payload(decode=True).decode()
        fid = f"file-{next(_ids):06d}"
        with self.book.lock:
            self.book.files[fid] = data
        handler._json(
            200,
            {
                "id": fid,
                "object": "file",
                "bytes": len(data),
                "created_at": int(time.time()),
                "filename": "deccp-batch.jsonl",
                "purpose": purpose,
                "status": "processed",
            },
        )
        return True

    def _create(self, handler: Any, file_id: str | None, requests: list[dict[str, Any]] | None) -> bool:
        book = self.book
        if file_id is not None:
            lines = [json.loads(x) for x in book.files[file_id].decode().splitlines() if x.strip()]
            models = {line["body"].get("model") for line in lines}
        else:
            lines = list(requests or [])
            models = {line["params"].get("model") for line in lines}
            bad = models & book.invalid_models
            if bad:  # Anthropic validates on create
                handler._json(400, self.error_body(400, f"requests.0.params.model: model {sorted(bad)[0]} not found"))
                return True
        prefix = "batch_" if self.provider == "openai" else "msgbatch_"
        batch = FakeBatch(id=f"{prefix}{next(_ids):06d}", lines=lines, created=time.time(), input_file_id=file_id)
        if models & book.invalid_models:
            batch.status, batch.error = "failed", f"Model {sorted(models & book.invalid_models)[0]} does not exist"
            batch.results = {}
        with book.lock:
            book.creates += 1
            book.batches[batch.id] = batch
            book.submitted.update(line["custom_id"] for line in lines)
        handler._json(200, self._object(batch))
        return True

    def _retrieve(self, handler: Any, batch_id: str) -> bool:
        batch = self.book.batches.get(batch_id)
        if batch is None:
            handler._json(404, self.error_body(404, f"No batch found with id '{batch_id}'"))
            return True
        with self.book.lock:
            batch.polls += 1
            if batch.results is None and (
                batch.canceled
                or (batch.polls >= self.book.polls_to_complete and time.time() - batch.created >= self.book.delay_s)
            ):
                self._finish(batch)
        handler._json(200, self._object(batch))
        return True

    def _cancel(self, handler: Any, batch_id: str) -> bool:
        batch = self.book.batches[batch_id]
        with self.book.lock:
            batch.canceled = True
            if batch.results is None:
                batch.status = "cancelling" if self.provider == "openai" else "canceling"
        handler._json(200, self._object(batch))
        return True

    # -- results ---------------------------------------------------------------------------------
    def _finish(self, batch: FakeBatch) -> None:
        """Answer the lines (all, half when expiring, none when canceled), in the provider's format."""
        answered = 0 if batch.canceled else len(batch.lines) // 2 if self.book.expire else len(batch.lines)
        batch.results = {}
        for i, line in enumerate(batch.lines):
            cid = line["custom_id"]
            body = line["body"] if self.provider == "openai" else line["params"]
            if i >= answered:
                batch.results[cid] = self._missing(cid, "cancelled" if batch.canceled else "expired")
                continue
            prompt, system = self.prompt_of(body)
            needle = any(n in prompt for n in self.book.error_needles) and cid not in self.book.errored_once
            if needle:
                self.book.errored_once.add(cid)
                batch.results[cid] = self._errored(cid)
            else:
                batch.results[cid] = self._succeeded(cid, self.success(body, prompt, system, empty=False))
        if self.provider == "openai":
            ok = [r for r in batch.results.values() if r.get("response") and r["response"]["status_code"] == 200]
            bad = [r for r in batch.results.values() if r not in ok]
            if ok:
                batch.output_file_id = f"file-{next(_ids):06d}"
                self.book.files[batch.output_file_id] = "".join(json.dumps(r) + "\n" for r in ok).encode()
            if bad:
                batch.error_file_id = f"file-{next(_ids):06d}"
                self.book.files[batch.error_file_id] = "".join(json.dumps(r) + "\n" for r in bad).encode()
            batch.status = "cancelled" if batch.canceled else "expired" if self.book.expire else "completed"
        else:
            batch.status = "ended"

    def _succeeded(self, cid: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.provider == "openai":
            return {
                "id": f"batch_req_{next(_ids)}",
                "custom_id": cid,
                "response": {"status_code": 200, "request_id": f"req_{next(_ids)}", "body": body},
                "error": None,
            }
        return {"custom_id": cid, "result": {"type": "succeeded", "message": body}}

    def _errored(self, cid: str) -> dict[str, Any]:
        if self.provider == "openai":
            return {
                "id": f"batch_req_{next(_ids)}",
                "custom_id": cid,
                "response": {
                    "status_code": 500,
                    "request_id": f"req_{next(_ids)}",
                    "body": self.error_body(500, "The server had an error processing this line"),
                },
                "error": None,
            }
        return {"custom_id": cid, "result": {"type": "errored", "error": self.error_body(500, "Internal error")}}

    def _missing(self, cid: str, why: str) -> dict[str, Any]:
        if self.provider == "openai":
            message = (
                "This request could not be executed before the completion window expired."
                if why == "expired"
                else "This request was cancelled."
            )
            return {
                "id": f"batch_req_{next(_ids)}",
                "custom_id": cid,
                "response": None,
                "error": {"code": f"batch_{why}", "message": message},
            }
        return {"custom_id": cid, "result": {"type": "canceled" if why == "cancelled" else "expired"}}

    # -- the batch object --------------------------------------------------------------------------
    def _counts(self, batch: FakeBatch) -> tuple[int, int, int]:
        """(done, failed, total): a share of the lines while running, as the real counts grow."""
        total = len(batch.lines)
        if batch.results is None:
            need = max(self.book.polls_to_complete, 1)
            return min(total, total * batch.polls // (need + 1)), 0, total
        ok = sum(
            1
            for r in batch.results.values()
            if (r.get("response") or {}).get("status_code") == 200 or (r.get("result") or {}).get("type") == "succeeded"
        )
        return ok, len(batch.results) - ok, total

    def _object(self, batch: FakeBatch) -> dict[str, Any]:
        done, failed, total = self._counts(batch)
        if self.provider == "openai":
            ended = batch.status in ("completed", "failed", "expired", "cancelled")
            errors = (
                {
                    "object": "list",
                    "data": [{"code": "invalid_model", "message": batch.error, "param": "body.model", "line": 1}],
                }
                if batch.error
                else None
            )
            return {
                "id": batch.id,
                "object": "batch",
                "endpoint": "/v1/chat/completions",
                "errors": errors,
                "input_file_id": batch.input_file_id,
                "completion_window": "24h",
                "status": batch.status,
                "output_file_id": batch.output_file_id,
                "error_file_id": batch.error_file_id,
                "created_at": int(batch.created),
                "in_progress_at": int(batch.created),
                "expires_at": int(batch.created) + 86400,
                "completed_at": int(time.time()) if ended else None,
                "failed_at": None,
                "expired_at": None,
                "cancelled_at": None,
                "request_counts": {"total": 0 if batch.error else total, "completed": done, "failed": failed},
                "metadata": None,
            }
        counts = {
            "processing": total - done - failed if batch.results is None else 0,
            "succeeded": done,
            "errored": 0,
            "canceled": 0,
            "expired": 0,
        }
        if batch.results is not None:
            kinds = Counter((r.get("result") or {}).get("type") for r in batch.results.values())
            counts.update(errored=kinds["errored"], canceled=kinds["canceled"], expired=kinds["expired"])
        ended = batch.results is not None
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": batch.status,
            "request_counts": counts,
            "created_at": _iso(batch.created),
            "expires_at": _iso(batch.created + 86400),
            "ended_at": _iso(time.time()) if ended else None,
            "archived_at": None,
            "cancel_initiated_at": _iso(time.time()) if batch.canceled else None,
            "results_url": f"{self.url}/v1/messages/batches/{batch.id}/results" if ended else None,
        }
