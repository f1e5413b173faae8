"""The review web app (Starlette): a JSON API over the store plus one static page.

Security: answers and references are hostile text; the page renders them with textContent only and
a Content-Security-Policy allows nothing but this server's own script, style and API. Bound to a
loopback address the app refuses other clients and foreign Host headers (DNS rebinding); bound
elsewhere every request needs the token (from the URL once, then an HttpOnly SameSite cookie).
Writes need a JSON body and a custom header, which a cross-site form or fetch cannot send.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deccp_eval.base.errors import UsageError, validation_problems
from deccp_eval.base.schema import GoldReference
from deccp_eval.review.items import ReviewItem, judge_verdicts
from deccp_eval.run.runner import gold_texts
from deccp_eval.store import review_state as review_store
from deccp_eval.store.db import Store

STATIC = Path(__file__).parent / "static"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
WRITE_HEADER = "x-deccp-review"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
MAX_BODY = 1_000_000


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


@dataclass
class ReviewConfig:
    db: Path
    items: list[ReviewItem]
    judge: str | None
    reviewer: str
    show_verdicts: bool = False
    token: str | None = None  # required on every request when set
    local_only: bool = True
    port: int = 0

    @property
    def cookie(self) -> str:
        return f"deccp_review_{self.port}"


class Guard:
    """ASGI middleware: who may connect, the token, write-request checks and security headers."""

    def __init__(self, app: Callable[..., Awaitable[None]], config: ReviewConfig) -> None:
        self.app, self.config = app, config

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        problem = self.refuse(scope, headers)
        if problem is not None:
            await self.plain(send, *problem)
            return
        set_cookie = None
        if self.config.token and parse_qs(scope.get("query_string", b"").decode()).get("token") == [self.config.token]:
            set_cookie = f"{self.config.cookie}={self.config.token}; HttpOnly; SameSite=Strict; Path=/"

        async def send_secure(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                extra = [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cache-control", b"no-store"),
                    (b"x-frame-options", b"DENY"),
                ]
                if set_cookie:
                    extra.append((b"set-cookie", set_cookie.encode()))
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        await self.app(scope, receive, send_secure)

    def refuse(self, scope: dict[str, Any], headers: dict[str, str]) -> tuple[int, str] | None:
        cfg = self.config
        if cfg.local_only:
            client = scope.get("client")
            if not client or not is_loopback(client[0]):
                return 403, "this review server accepts local connections only (start it with --host to share it)"
            host = headers.get("host", "")
            name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
            if name not in LOCAL_HOSTS:
                return 403, "unexpected Host header"
        if cfg.token and not self.has_token(scope, headers):
            return 401, "missing or wrong token: open the URL the review command printed"
        if scope["method"] not in ("GET", "HEAD"):
            if headers.get(WRITE_HEADER) != "1" or not headers.get("content-type", "").startswith("application/json"):
                return 403, "writes need a JSON body and the X-Deccp-Review header"
        return None

    def has_token(self, scope: dict[str, Any], headers: dict[str, str]) -> bool:
        token = self.config.token or ""
        given = parse_qs(scope.get("query_string", b"").decode()).get("token", [""])[0]
        if not given and "cookie" in headers:
            jar: SimpleCookie = SimpleCookie()
            jar.load(headers["cookie"])
            morsel = jar.get(self.config.cookie)
            given = morsel.value if morsel else ""
        return secrets.compare_digest(given.encode(), token.encode())

    @staticmethod
    async def plain(send: Any, status: int, text: str) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-security-policy", CSP.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": text.encode()})


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reviewer: str
    verdict: str
    accuracy: str | None = None
    misinformation: bool | None = None
    note: str = Field(default="", max_length=4000)


class GoldAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reviewer: str
    dataset: str
    prompt_id: str
    model: str | None = None
    sample: int | None = None
    text: str | None = Field(default=None, max_length=100_000)
    note: str = Field(default="", max_length=4000)


def create_app(config: ReviewConfig) -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Route

    items_by_key = {i.key: i for i in config.items}

    def open_store() -> Store:
        store = Store(config.db)
        review_store.ensure_tables(store.conn)
        return store

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def reviewer_of(request: Request, given: str | None = None) -> str:
        return review_store.check_reviewer(
            given if given is not None else request.query_params.get("reviewer") or config.reviewer
        )

    async def body(request: Request, model: type[BaseModel]) -> Any:
        try:
            return model.model_validate_json(await request.body())
        except ValidationError as exc:
            raise UsageError(validation_problems(exc)) from None

    def label_view(store: Store, labels: list[review_store.Label]) -> list[dict[str, Any]]:
        verdicts = judge_verdicts(store, [lab.response_key for lab in labels])
        return [{**lab.model_dump(mode="json"), "judges": verdicts.get(lab.response_key, {})} for lab in labels]

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ("review.js", "review.css"):
            return error(404, "not found")
        media = "text/javascript; charset=utf-8" if name.endswith(".js") else "text/css; charset=utf-8"
        return FileResponse(STATIC / name, media_type=media)

    def session(request: Request) -> Response:
        reviewer = reviewer_of(request)
        with open_store() as store:
            mine = review_store.labels(store.conn, reviewer=reviewer)
            shown = label_view(store, mine)
            before = judge_verdicts(store, list(items_by_key)) if config.show_verdicts else {}
        items = [{**i.model_dump(), **({"judges": before.get(i.key, {})} if before else {})} for i in config.items]
        return JSONResponse(
            {
                "reviewer": reviewer,
                "judge": config.judge,
                "show_verdicts": config.show_verdicts,
                "items": items,
                "labels": shown,
            }
        )

    async def put_label(request: Request) -> Response:
        key = request.path_params["key"]
        data = await body(request, LabelIn)
        if key not in items_by_key:
            return error(404, "not an item of this review")
        try:
            label = review_store.Label(response_key=key, **data.model_dump())
        except ValidationError as exc:
            return error(422, validation_problems(exc))
        if items_by_key[key].reference is None and (label.accuracy or label.misinformation is not None):
            return error(422, "accuracy and misinformation need a reference")

        def write() -> dict[str, Any]:
            with open_store() as store:
                return label_view(store, [review_store.put_label(store.conn, label)])[0]

        from starlette.concurrency import run_in_threadpool

        return JSONResponse(await run_in_threadpool(write))

    def delete_label(request: Request) -> Response:
        reviewer = reviewer_of(request)
        with open_store() as store:
            gone = review_store.delete_label(store.conn, reviewer, request.path_params["key"])
        return JSONResponse({"deleted": gone}, status_code=200 if gone else 404)

    def gold(request: Request) -> Response:
        with open_store() as store:
            refs: dict[tuple[str, str], list[GoldReference]] = defaultdict(list)
            for ds, ref in store.gold():
                refs[(ds, ref.prompt_id)].append(ref)
            log: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
            for entry in review_store.gold_log(store.conn):
                log[(entry["dataset"], entry["prompt_id"])].append(entry)
            groups = []
            for ds in sorted({d for d, _ in refs}):
                chosen = gold_texts(store, ds)
                prompts = {p.id: p for p in store.prompts(ds)}
                pairs: dict[str, dict[str, str]] = defaultdict(dict)
                for q in prompts.values():
                    pairs[q.pair_id][q.lang] = q.text
                for (d, pid), group in refs.items():
                    if d != ds:
                        continue
                    p = prompts.get(pid)
                    pick = next(
                        (
                            r
                            for r in sorted(group, key=lambda r: (r.reviewed, r.created, r.text), reverse=True)
                            if r.text == chosen.get(pid)
                        ),
                        None,
                    )
                    groups.append(
                        {
                            "dataset": ds,
                            "prompt_id": pid,
                            "lang": p.lang if p else "",
                            "pair_id": p.pair_id if p else pid,
                            "prompt": p.text if p else "",
                            "expected_facts": p.expected_facts if p else [],
                            "twins": {lang: t for lang, t in pairs.get(p.pair_id, {}).items() if lang != p.lang}
                            if p
                            else {},
                            "references": [{**r.model_dump(), "used": r is pick} for r in group],
                            "log": log.get((ds, pid), []),
                        }
                    )
        groups.sort(key=lambda g: (g["dataset"], g["pair_id"], g["lang"], g["prompt_id"]))
        return JSONResponse({"groups": groups})

    def find_ref(store: Store, action: GoldAction) -> GoldReference:
        for _ds, ref in store.gold(action.dataset):
            if ref.prompt_id == action.prompt_id and ref.model == action.model and ref.sample == action.sample:
                return ref
        raise UsageError(f"no reference {action.model}#{action.sample} for {action.prompt_id}")

    async def gold_action(request: Request) -> Response:
        kind = request.path_params["action"]
        action = await body(request, GoldAction)
        reviewer = reviewer_of(request, action.reviewer)

        def apply() -> dict[str, Any]:
            with open_store() as store:
                if kind == "reviewed":
                    ref = find_ref(store, action)
                    store.put_gold(action.dataset, ref.model_copy(update={"reviewed": True}))
                    review_store.log_gold(
                        store.conn,
                        action.dataset,
                        action.prompt_id,
                        reviewer,
                        "reviewed",
                        ref.model,
                        ref.sample,
                        action.note,
                    )
                    return {"ok": True}
                if kind == "edit":
                    base = find_ref(store, action)
                    text = (action.text or "").strip()
                    if not text:
                        raise UsageError("the edited reference is empty")
                    existing = [r for _, r in store.gold(action.dataset)]
                    new = review_store.edited_reference(existing, action.prompt_id, reviewer, text, base.template_hash)
                    store.put_gold(action.dataset, new)
                    review_store.log_gold(
                        store.conn,
                        action.dataset,
                        action.prompt_id,
                        reviewer,
                        "edited",
                        new.model,
                        new.sample,
                        f"edit of {base.model}#{base.sample}" + (f": {action.note}" if action.note else ""),
                    )
                    return {"ok": True, "model": new.model, "sample": new.sample}
                if kind == "flag":
                    if not action.note.strip():
                        raise UsageError("say what the references disagree on")
                    review_store.log_gold(
                        store.conn,
                        action.dataset,
                        action.prompt_id,
                        reviewer,
                        "flag",
                        action.model,
                        action.sample,
                        action.note.strip(),
                    )
                    return {"ok": True}
                raise UsageError(f"unknown action {kind!r}")

        from starlette.concurrency import run_in_threadpool

        return JSONResponse(await run_in_threadpool(apply))

    async def usage_error(request: Request, exc: Exception) -> Response:
        return error(400, str(exc))

    routes = [
        Route("/", index),
        Route("/static/{name}", static),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Route("/api/session", session),
        Route("/api/labels/{key}", put_label, methods=["PUT"]),
        Route("/api/labels/{key}", delete_label, methods=["DELETE"]),
        Route("/api/gold", gold),
        Route("/api/gold/{action}", gold_action, methods=["POST"]),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(Guard, config=config)],
        exception_handlers={UsageError: usage_error},
        max_body_size=MAX_BODY,
    )
