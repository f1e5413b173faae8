"""`deccp-eval batches`: the provider batches in the store, their state and counts; cancel one."""

from __future__ import annotations

from pathlib import Path

import click

from deccp_eval.commands.common import db_option, setup_logging


@click.command("batches")
@click.option("--all", "show_all", is_flag=True, help="Finished batches too (default: open ones).")
@click.option("--refresh", is_flag=True, help="Ask the providers for the open batches' state first (needs the keys).")
@click.option("--cancel", "cancel_id", default=None, metavar="ID", help="Cancel this batch at the provider.")
@click.option("-v", "--verbose", count=True)
@db_option
def batches(show_all: bool, refresh: bool, cancel_id: str | None, verbose: int, db: Path) -> None:
    """List batches sent with --batch (open ones by default), or cancel one.

    A killed run's batches keep running at the provider; rerun the same command to collect them
    (it polls the stored batch ids, submits nothing new for them, and stores each answer).

    \b
    Examples:
      deccp-eval batches --refresh
      deccp-eval batches --cancel batch_abc123
    """
    from deccp_eval.store.batches import BatchState

    setup_logging(db, verbose)
    if not db.exists():
        raise click.UsageError(f"no store at {db}")
    state = BatchState(db)
    try:
        targets = [cancel_id] if cancel_id else [b.id for b in state.batches(open_only=True)] if refresh else []
        for batch_id in targets:
            row = state.batch(batch_id)
            if row is None:
                raise click.UsageError(f"no batch {batch_id!r} in {db} (see `deccp-eval batches --all`)")
            info = _backend(row).batch_call("batch_cancel" if cancel_id else "batch_poll", batch_id)
            state.update(batch_id, info.status, info.completed, info.failed, info.message)
            if cancel_id:
                click.echo(
                    f"cancel requested for {batch_id}: {info.status}; rerun the command that made it to "
                    "store what finished (the rest is recorded as failed and retried)",
                    err=True,
                )
        rows = state.batches(open_only=not show_all)
        if not rows:
            click.echo("no open batches" if not show_all else "no batches", err=True)
            return
        click.echo("| batch | model | status | done | failed | requests | created | updated |")
        click.echo("|---|---|---|---|---|---|---|---|")
        for b in rows:
            status = b.status + ("" if b.finished else " (open)")
            click.echo(
                f"| {b.id} | {b.spec} | {status} | {b.completed} | {b.failed} | {b.n_requests} | {b.created} "
                f"| {b.updated} |"
            )
    finally:
        state.close()


def _backend(row):  # -> RemoteBackend, rebuilt from the stored spec and options (never a key)
    import json

    from deccp_eval.backends.contract import BackendOptions, make_backend

    opts = BackendOptions.model_validate(json.loads(row.options))
    return make_backend(row.spec, opts)
