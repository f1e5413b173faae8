"""What every command shares: the error-printing group, the --db and model options, logging setup
and the summary/leaderboard printing. Light on purpose: commands import heavy libraries inside."""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from deccp_eval.base.errors import DeccpError
from deccp_eval.commands.loading import load_kwargs, local_load_options

DB_HELP = "SQLite store (default results/deccp.db)"
db_option = click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("results/deccp.db"),
    show_default=True,
    help=DB_HELP,
)


def setup_logging(db: Path, verbose: int, quiet_libraries: bool = False) -> None:
    """-v/-vv on stderr; INFO and up also to deccp-eval.log beside the store. With `quiet_libraries`
    and no -v, third-party progress bars are off and library logs and warnings go to that file only
    (deccp_eval.base.quiet)."""
    root = logging.getLogger("deccp_eval")
    if root.handlers:
        return
    root.setLevel(logging.DEBUG)
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    err.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root.addHandler(err)
    db.parent.mkdir(parents=True, exist_ok=True)
    fh = logging.FileHandler(db.parent / "deccp-eval.log", encoding="utf-8")
    fh.setLevel(logging.INFO)
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root.addHandler(fh)
    if quiet_libraries and not verbose:
        from deccp_eval.base.quiet import quiet_libraries as quiet

        lib = logging.FileHandler(db.parent / "deccp-eval.log", encoding="utf-8")
        lib.setLevel(logging.INFO)
        lib.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        quiet(lib)


class Group(click.Group):
    """Prints DeccpError as a message and exits with its code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DeccpError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except sqlite3.OperationalError as exc:  # another process held the store past the timeout
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            click.echo(f"Error: the store is locked by another process ({exc}); try again", err=True)
            ctx.exit(2)


def split_csv(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def model_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every command that builds backends."""
    for opt in reversed(
        [
            click.option(
                "--batch-size",
                type=click.IntRange(min=1),
                default=16,
                show_default=True,
                help="Local backends: prompts per generate call.",
            ),
            click.option("--device", default="auto", show_default=True, help="Local backends: cpu, cuda, mps or auto."),
            click.option("--dtype", default="auto", show_default=True, help="Local backends: auto, float32, bfloat16."),
            *local_load_options(),
            click.option(
                "--max-concurrency",
                type=click.IntRange(min=1),
                default=32,
                show_default=True,
                help="Remote backends: requests in flight.",
            ),
            click.option(
                "--max-retries",
                type=click.IntRange(min=1),
                default=6,
                show_default=True,
                help="Remote backends: attempts per request.",
            ),
            click.option(
                "--timeout",
                "timeout_s",
                type=click.FloatRange(min=0.1),
                default=120.0,
                show_default=True,
                help="Remote backends: seconds per request.",
            ),
            click.option("--base-url", default=None, help="Remote backends: an OpenAI-compatible endpoint."),
            click.option(
                "--api-key-env",
                default=None,
                help="Name of the env var holding the API key (never the key); `none` for servers that need no key.",
            ),
            click.option(
                "--backend-option",
                "backend_options",
                multiple=True,
                metavar="KEY=VALUE",
                help="Backend-specific option (value parsed as JSON when it can be), e.g. "
                "tensor_parallel_size=2, max_model_len=4096; `deccp-eval plugins` lists each "
                "backend's. Repeatable.",
            ),
            click.option(
                "--models-file",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                default=None,
                help="YAML/TOML file of named models (backend, model, base_url, api_key_env, prices, params).",
            ),
            click.option(
                "--judge-samples",
                type=click.IntRange(min=1),
                default=None,
                help="LLM judges: samples per item; confidence = agreement when the backend gives no log-probs.",
            ),
            click.option(
                "--judge-examples",
                type=click.Path(exists=True, dir_okay=False),
                default=None,
                help="LLM judges: few-shot examples, a labelled JSONL file (prompt, response, label).",
            ),
            click.option(
                "--batch",
                "batch",
                is_flag=True,
                default=False,
                help="openai/anthropic: send through the provider's batch API (about half the price, results "
                "within 24 h); resumable: rerun the same command or see `deccp-eval batches`.",
            ),
            click.option(
                "--dry-run",
                "dry_run",
                is_flag=True,
                default=False,
                help="Print the requests, batches and estimated cost (batch and normal prices); send nothing.",
            ),
            click.option(
                "--escalate-below",
                type=click.FloatRange(0, 1),
                default=None,
                help="Cascade judges: a member's verdict stands at this confidence or above (default 0.8).",
            ),
        ]
    ):
        fn = opt(fn)
    return fn


def executor_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Where local models run: in this process, or in Ray actors across a cluster."""
    for opt in reversed(
        [
            click.option(
                "--executor",
                type=click.Choice(["local", "ray"]),
                default="local",
                show_default=True,
                help="ray: local models (hf, vllm, abliterated) run in Ray actors; the store stays here.",
            ),
            click.option(
                "--ray-address",
                default=None,
                help="A running Ray cluster (e.g. 10.0.0.1:6379 or auto); default: start a local one.",
            ),
            click.option(
                "--replicas",
                type=click.IntRange(min=1),
                default=None,
                help="Ray: actors per model (default: one per GPU group, or one per node without GPUs).",
            ),
            click.option(
                "--gpus-per-replica",
                type=click.FloatRange(min=0),
                default=None,
                help="Ray: GPUs per actor (default 1 when the cluster has GPUs, else 0); vLLM replicas "
                "spanning several use tensor parallelism.",
            ),
        ]
    ):
        fn = opt(fn)
    return fn


def make_executor(kw: dict[str, Any]):  # -> Executor (lazy: ray loads only when asked for)
    """The executor that `executor_options` collected into **kw."""
    from deccp_eval.run.executors import make_executor as make

    return make(
        kw["executor"], address=kw["ray_address"], replicas=kw["replicas"], gpus_per_replica=kw["gpus_per_replica"]
    )


def backend_options(kw: dict[str, Any], db: Path | None = None):  # -> BackendOptions (pydantic loads lazily)
    """The BackendOptions that `model_options` collected into **kw; `db` keeps the batch ids."""
    from pydantic import ValidationError

    from deccp_eval.backends.contract import BackendOptions
    from deccp_eval.base.errors import UsageError, validation_problems

    extra: dict[str, Any] = {}
    for item in kw.get("backend_options") or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--backend-option {item!r}: expected KEY=VALUE")
        try:
            extra[key] = json.loads(value)
        except json.JSONDecodeError:
            extra[key] = value
    judge = {
        k: kw[flag]
        for k, flag in (
            ("samples", "judge_samples"),
            ("examples", "judge_examples"),
            ("escalate_below", "escalate_below"),
        )
        if kw.get(flag) is not None
    }
    try:  # a --backend-option judge_KEY=... moves from `extra` into `judge` as well
        return BackendOptions.model_validate(
            {
                "batch_size": kw["batch_size"],
                "max_concurrency": kw["max_concurrency"],
                "max_retries": kw["max_retries"],
                "timeout_s": kw["timeout_s"],
                "base_url": kw["base_url"],
                "api_key_env": kw["api_key_env"],
                "batch": bool(kw.get("batch")),
                "dry_run": bool(kw.get("dry_run")),
                "state_db": str(db) if db is not None else None,
                "load": {"device": kw["device"], "dtype": kw["dtype"], **load_kwargs(kw)},
                "judge": judge,
                "extra": extra,
            }
        )
    except ValidationError as exc:
        raise UsageError(f"options: {validation_problems(exc)}") from None


def resolve_models(specs: list[str], kw: dict[str, Any], db: Path | None = None):
    """Model specs (or models-file names) -> (specs, {spec: BackendOptions}, default params per spec)."""
    from deccp_eval.run.models_file import resolve

    return resolve(specs, backend_options(kw, db), kw.get("models_file"))


def dataset_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--map", "column_map", multiple=True, help="Column mapping FIELD=COLUMN.")(fn)
    return click.option("--dataset", "-d", default="deccp", show_default=True)(fn)


def print_summary(summary: Any) -> None:
    from rich.table import Table

    from deccp_eval.base.progress import console

    table = Table(title=f"run {summary.run_id}")
    for col in ("model", "planned", "from cache", "generated", "errors"):
        table.add_column(col)
    for m in summary.models:
        table.add_row(m.model, str(m.planned), str(m.cached), str(m.generated), str(m.errors))
    console.print(table)
    for j in summary.judges:
        console.print(
            f"judge {j.judge}: {j.judged} judged, {j.cached} from cache, {j.unparsed} unparsed, {j.errors} failed"
        )


def print_leaderboard(store: Any, run_id: str | None = None) -> None:
    from deccp_eval.analysis import leaderboard

    rows = leaderboard.compute(store, run_id=run_id)
    click.echo(leaderboard.markdown(rows))


def command_line() -> str:
    """The command as typed (program name normalised), for run provenance. API keys are passed
    through the environment, never as arguments, so none can be recorded here."""
    import shlex

    return shlex.join(["deccp-eval", *sys.argv[1:]])
