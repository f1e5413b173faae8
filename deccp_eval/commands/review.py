"""`deccp-eval review`: the local web app where people label answers and review gold references."""

from __future__ import annotations

import getpass
import secrets
import socket
from pathlib import Path

import click

from deccp_eval.base.errors import MissingDependency, UsageError
from deccp_eval.commands.common import db_option


def _default_reviewer() -> str:
    try:
        return getpass.getuser() or "reviewer"
    except (KeyError, OSError):
        return "reviewer"


@click.command("review")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; anything but loopback requires the token printed in the URL.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="0 picks a free port.")
@click.option("--reviewer", default=None, help="Default reviewer name (the page can switch; default: your login).")
@click.option(
    "--sample",
    "sample_n",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Answers to label, stratified by model x language x judge verdict.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same store: same items (overlap).")
@click.option("--judge", "-j", default=None, help="Judge whose verdicts stratify the sample (default: the most used).")
@click.option("--dataset", "-d", default=None, help="Only answers to this dataset.")
@click.option("--show-verdicts", is_flag=True, help="Show judge verdicts before labelling (default: blind).")
@click.option("--token", default=None, help="Token for non-local access (default: a random one).")
@db_option
def review(
    host: str,
    port: int,
    reviewer: str | None,
    sample_n: int,
    seed: int,
    judge: str | None,
    dataset: str | None,
    show_verdicts: bool,
    token: str | None,
    db: Path,
) -> None:
    """Label stored answers and review gold references in the browser; labels go to the store.

    \b
    Examples:
      deccp-eval review                       # http://127.0.0.1:8765/ , blind labelling of 100 answers
      deccp-eval review --reviewer alice --sample 200 --seed 1
      deccp-eval review --host 0.0.0.0        # shared on the network: the printed URL carries a token
    """
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise MissingDependency("starlette and uvicorn", "review", "`deccp-eval review`") from None
    from deccp_eval.review.items import sample_items
    from deccp_eval.review.server import ReviewConfig, create_app, is_loopback
    from deccp_eval.store import review_state as review_store
    from deccp_eval.store.db import Store

    if not db.exists():
        raise UsageError(f"{db} does not exist: run `deccp-eval run` (or `deccp-eval demo`) first")
    name = review_store.check_reviewer(reviewer or _default_reviewer())
    with Store(db) as store:
        review_store.ensure_tables(store.conn)
        items, used_judge = sample_items(store, sample_n, seed, judge, dataset)
    local = is_loopback(host)
    key = None if local else (token or secrets.token_urlsafe(24))
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)  # connections queue from now on, before the URL is printed
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    port = sock.getsockname()[1]
    config = ReviewConfig(
        db=db,
        items=items,
        judge=used_judge,
        reviewer=name,
        show_verdicts=show_verdicts,
        token=key,
        local_only=local,
        port=port,
    )
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={key}" if key else "")
    click.echo(url)
    click.echo(
        f"{len(items)} answers to label (judge {used_judge or 'none'}, seed {seed}); reviewer {name}; Ctrl+C stops",
        err=True,
    )
    server = uvicorn.Server(uvicorn.Config(create_app(config), log_level="warning", access_log=False, lifespan="off"))
    server.run(sockets=[sock])
