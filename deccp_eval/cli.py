"""The `deccp-eval` command. Heavy libraries load only inside the commands that need them."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable

import click

from deccp_eval import __version__
from deccp_eval.commands.loading import load_kwargs, local_load_options
from deccp_eval.errors import DeccpError

DB_HELP = "SQLite store (default results/deccp.db)"
db_option = click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=Path("results/deccp.db"),
                         show_default=True, help=DB_HELP)


def _setup_logging(db: Path, verbose: int) -> None:
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


# Commands that live in their own modules, imported only when used: "name" -> "module:attribute".
LAZY_COMMANDS: dict[str, str] = {
    "validate-judge": "deccp_eval.commands.validate:validate_judge",
    "gold": "deccp_eval.commands.gold:gold",
    "report": "deccp_eval.commands.report:report",
    "compare": "deccp_eval.commands.report:compare",
    "abliterate": "deccp_eval.commands.abliterate:abliterate",
}


class Group(click.Group):
    """Prints DeccpError as a message and exits with its code, never a traceback; loads
    LAZY_COMMANDS on first use so start-up stays instant."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | (set(LAZY_COMMANDS) if self.name == "main" else set()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if self.name == "main" and name in LAZY_COMMANDS and name not in self.commands:
            import importlib

            module, _, attr = LAZY_COMMANDS[name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DeccpError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deccp-eval")
def main() -> None:
    """Measure how language models censor questions about China, in English and Chinese.

    \b
    Examples:
      deccp-eval demo                                  # offline: toy model, built-in set, leaderboard
      deccp-eval run --model hf:Qwen/Qwen2-7B-Instruct --lang en,zh
      deccp-eval run --model openai:deepseek-chat --base-url https://api.deepseek.com \\
          --api-key-env DEEPSEEK_API_KEY --judge keyword
      deccp-eval leaderboard
    """


def _split_csv(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def model_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every command that builds backends."""
    for opt in reversed([
        click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
                     help="Local backends: prompts per generate call."),
        click.option("--device", default="auto", show_default=True, help="Local backends: cpu, cuda, mps or auto."),
        click.option("--dtype", default="auto", show_default=True, help="Local backends: auto, float32, bfloat16."),
        *local_load_options(),
        click.option("--max-concurrency", type=click.IntRange(min=1), default=32, show_default=True,
                     help="Remote backends: requests in flight."),
        click.option("--max-retries", type=click.IntRange(min=1), default=6, show_default=True,
                     help="Remote backends: attempts per request."),
        click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.1), default=120.0, show_default=True,
                     help="Remote backends: seconds per request."),
        click.option("--base-url", default=None, help="Remote backends: an OpenAI-compatible endpoint."),
        click.option("--api-key-env", default=None, help="Name of the env var holding the API key (never the key); `none` for servers that need no key."),
        click.option("--backend-option", "backend_options", multiple=True, metavar="KEY=VALUE",
                     help="Backend-specific option (value parsed as JSON when it can be), e.g. "
                          "tensor_parallel_size=2, max_model_len=4096. Repeatable."),
        click.option("--models-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     help="YAML/TOML file of named models (backend, model, base_url, api_key_env, prices, params)."),
    ]):
        fn = opt(fn)
    return fn


def _backend_options(kw: dict[str, Any]):
    from deccp_eval.backend import BackendOptions

    extra: dict[str, Any] = {}
    for item in kw.get("backend_options") or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--backend-option {item!r}: expected KEY=VALUE")
        try:
            extra[key] = json.loads(value)
        except json.JSONDecodeError:
            extra[key] = value
    return BackendOptions(batch_size=kw["batch_size"], device=kw["device"], dtype=kw["dtype"],
                          max_concurrency=kw["max_concurrency"], max_retries=kw["max_retries"],
                          timeout_s=kw["timeout_s"], base_url=kw["base_url"], api_key_env=kw["api_key_env"],
                          extra=extra, **load_kwargs(kw))


def _resolve_models(specs: list[str], kw: dict[str, Any]):
    """Model specs (or models-file names) -> (specs, {spec: BackendOptions}, default params per spec)."""
    from deccp_eval.models_file import resolve

    return resolve(specs, _backend_options(kw), kw.get("models_file"))


@main.command()
@click.option("--model", "-m", "models", multiple=True, required=True,
              help="BACKEND:MODEL, e.g. hf:./my-model, openai:gpt-4o-mini, or a name from --models-file. Repeatable.")
@click.option("--judge", "-j", "judges", multiple=True, default=("keyword",), show_default=True,
              help="Judge spec: keyword, llm:BACKEND:MODEL, panel:A,B,C. Repeatable.")
@click.option("--dataset", "-d", default="deccp", show_default=True,
              help="A registered name, a .jsonl/.csv/.parquet file, a dataset folder or a hub name.")
@click.option("--map", "column_map", multiple=True, help="Column mapping FIELD=COLUMN for outside files.")
@click.option("--split", default=None, help="Dataset split for `datasets` sources.")
@click.option("--lang", "langs", multiple=True, default=("en,zh",), show_default=True, help="Languages, comma-separated.")
@click.option("--kind", type=click.Choice(["all", "sensitive", "control"]), default="all", show_default=True)
@click.option("--category", "categories", multiple=True, help="Only these categories (comma-separated).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N question pairs (all languages kept).")
@click.option("--samples", type=click.IntRange(min=1), default=1, show_default=True, help="Samples per prompt.")
@click.option("--temperature", type=click.FloatRange(0, 2), default=0.0, show_default=True)
@click.option("--max-tokens", type=click.IntRange(min=1), default=512, show_default=True)
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--system-prompt", default=None, help="System prompt sent with every question.")
@click.option("--no-cache", is_flag=True, help="Send every request again, even when stored.")
@click.option("--retry-errors", is_flag=True, help="Re-send requests stored as errors.")
@click.option("-v", "--verbose", count=True)
@model_options
@db_option
def run(models: tuple[str, ...], judges: tuple[str, ...], dataset: str, column_map: tuple[str, ...],
        split: str | None, langs: tuple[str, ...], kind: str, categories: tuple[str, ...], limit: int | None,
        samples: int, temperature: float, max_tokens: int, top_p: float, seed: int, system_prompt: str | None,
        no_cache: bool, retry_errors: bool, verbose: int, db: Path, **kw: Any) -> None:
    """Generate answers, judge them, store everything; a rerun resumes where the last one stopped.

    \b
    Examples:
      deccp-eval run -m hf:deccp-toy --limit 10
      deccp-eval run -m openai:gpt-4o-mini -m anthropic:claude-sonnet-4-5 -j llm:openai:gpt-4o-mini
      deccp-eval run -m vllm:Qwen/Qwen2-7B-Instruct --lang zh --samples 3 --temperature 0.7
    """
    from deccp_eval import runner
    from deccp_eval.datasets import load_dataset, parse_column_map
    from deccp_eval.schema import SamplingParams
    from deccp_eval.store import Store

    _setup_logging(db, verbose)
    data = load_dataset(dataset, parse_column_map(_split_csv(column_map)), split).filter(
        langs=_split_csv(langs), limit_pairs=limit, kinds=None if kind == "all" else [kind],
        categories=_split_csv(categories) or None)
    if not data.prompts:
        raise click.UsageError("no prompts left after --lang/--kind/--category/--limit")
    specs, options, defaults = _resolve_models(list(models), kw)
    ctx = click.get_current_context()
    explicit = {n for n in ("temperature", "max_tokens", "top_p", "seed", "system_prompt")
                if ctx.get_parameter_source(n) is not click.core.ParameterSource.DEFAULT}
    defaults = {spec: {k: v for k, v in d.items() if k not in explicit} for spec, d in defaults.items()}
    params = SamplingParams(temperature=temperature, max_tokens=max_tokens, top_p=top_p, seed=seed,
                            system_prompt=system_prompt)
    with Store(db) as store:
        summary = runner.run(store, data, specs, list(judges), params, samples=samples, options=options,
                             judge_options=_backend_options(kw), no_cache=no_cache, retry_errors=retry_errors,
                             param_overrides=defaults)
        _print_summary(summary)
        _print_leaderboard(store, summary.run_id)
    sys.exit(1 if summary.failed else 0)


def _print_summary(summary: Any) -> None:
    from rich.table import Table

    from deccp_eval.progress import console

    table = Table(title=f"run {summary.run_id}")
    for col in ("model", "planned", "from cache", "generated", "errors"):
        table.add_column(col)
    for m in summary.models:
        table.add_row(m.model, str(m.planned), str(m.cached), str(m.generated), str(m.errors))
    console.print(table)
    for j in summary.judges:
        console.print(f"judge {j.judge}: {j.judged} judged, {j.cached} from cache, {j.unparsed} unparsed, "
                      f"{j.errors} failed")


def _print_leaderboard(store: Any, run_id: str | None = None) -> None:
    from deccp_eval import leaderboard

    rows = leaderboard.compute(store, run_id=run_id)
    click.echo(leaderboard.markdown(rows))


@main.command()
@click.option("--judge", "-j", "judges", multiple=True, required=True, help="Judge spec; repeatable.")
@click.option("--run", "run_id", default=None, help="Only this run (default: each model's latest run).")
@click.option("--model", "-m", "models", multiple=True, help="Only these models.")
@click.option("-v", "--verbose", count=True)
@model_options
@db_option
def judge(judges: tuple[str, ...], run_id: str | None, models: tuple[str, ...], verbose: int, db: Path,
          **kw: Any) -> None:
    """Judge stored responses again with another judge, without regenerating.

    \b
    Example:
      deccp-eval judge -j llm:openai:gpt-4o-mini
    """
    from deccp_eval import runner
    from deccp_eval.judge import make_judge
    from deccp_eval.store import Store

    _setup_logging(db, verbose)
    failed = 0
    with Store(db) as store:
        rows = store.response_rows(run_id=run_id, models=list(models) or None)
        if not rows:
            raise click.UsageError(f"no stored responses in {db}" + (f" for run {run_id}" if run_id else ""))
        for dataset in sorted({r["dataset"] for r in rows}):
            refs = runner.gold_texts(store, dataset)
            part = [r for r in rows if r["dataset"] == dataset]
            for spec in judges:
                tally = runner.judge_rows(store, part, make_judge(spec, _backend_options(kw)), refs)
                click.echo(f"judge {tally.judge}: {tally.judged} judged, {tally.cached} from cache, "
                           f"{tally.unparsed} unparsed, {tally.errors} failed", err=True)
                failed += tally.errors
        _print_leaderboard(store, run_id)
    sys.exit(1 if failed else 0)


@main.command("leaderboard")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("results/leaderboard.csv"),
              show_default=True)
@click.option("--run", "run_id", default=None, help="Only this run (default: each model's latest run).")
@click.option("--json", "as_json", is_flag=True, help="Print rows as JSON instead of Markdown.")
@db_option
def leaderboard_cmd(out: Path, run_id: str | None, as_json: bool, db: Path) -> None:
    """Write leaderboard CSVs (overall and per category) and print the table."""
    from deccp_eval import leaderboard
    from deccp_eval.store import Store

    if not db.exists():
        raise click.UsageError(f"{db} does not exist: run `deccp-eval run` (or `deccp-eval demo`) first")
    with Store(db) as store:
        rows = leaderboard.compute(store, run_id=run_id)
        if not rows:
            raise click.UsageError(f"no results in {db}")
        leaderboard.write_csv(rows, out)
        by_cat = leaderboard.compute(store, run_id=run_id, by=("model", "lang", "judge", "category"))
        leaderboard.write_csv(by_cat, out.with_name(out.stem + "_by_category.csv"))
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, default=str))
    else:
        click.echo(leaderboard.markdown(rows))
    click.echo(f"wrote {out} and {out.with_name(out.stem + '_by_category.csv')}", err=True)


@main.group(cls=Group)
def prompts() -> None:
    """Inspect and export prompt sets."""


def _dataset_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--map", "column_map", multiple=True, help="Column mapping FIELD=COLUMN.")(fn)
    return click.option("--dataset", "-d", default="deccp", show_default=True)(fn)


@prompts.command("list")
@_dataset_option
@click.option("--lang", "langs", multiple=True)
@click.option("--limit", type=int, default=None)
def prompts_list(dataset: str, column_map: tuple[str, ...], langs: tuple[str, ...], limit: int | None) -> None:
    """Print prompts as JSONL."""
    from deccp_eval.datasets import load_dataset, parse_column_map

    data = load_dataset(dataset, parse_column_map(_split_csv(column_map))).filter(langs=_split_csv(langs) or None,
                                                                      limit_pairs=limit)
    for p in data.prompts:
        click.echo(p.model_dump_json())


@prompts.command("stats")
@_dataset_option
@click.option("--json", "as_json", is_flag=True)
def prompts_stats(dataset: str, column_map: tuple[str, ...], as_json: bool) -> None:
    """Counts by category x language x kind."""
    from deccp_eval.datasets import load_dataset, parse_column_map
    from deccp_eval.prompt_stats import counts, table

    data = load_dataset(dataset, parse_column_map(_split_csv(column_map)))
    result = counts(data)
    click.echo(json.dumps(result, ensure_ascii=False) if as_json else table(result))


@prompts.command("export")
@click.option("--censored-by", "model", required=True, help="Model spec whose stored run is read.")
@click.option("--judge", default=None, help="Judge whose verdicts count (needed when several judged the run).")
@click.option("--run", "run_id", default=None, help="Only this run (default: the model's latest run).")
@click.option("--verdict", "verdicts", multiple=True, type=click.Choice(["refusal", "evasive", "state_aligned", "answer"]),
              help="Verdicts to export (default: refusal, evasive, state_aligned).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="JSONL file (default stdout).")
@db_option
def prompts_export(model: str, judge: str | None, run_id: str | None, verdicts: tuple[str, ...], out: Path | None,
                   db: Path) -> None:
    """Write the prompts a model actually censored in a stored run (its per-model censored list).

    \b
    Example:
      deccp-eval prompts export --censored-by hf:deccp-toy --out censored.jsonl
    """
    from deccp_eval.censored import censored_prompts
    from deccp_eval.store import Store

    if not db.exists():
        raise click.UsageError(f"{db} does not exist")
    with Store(db) as store:
        rows = censored_prompts(store, model, judge=judge, run_id=run_id,
                                verdicts=verdicts or ("refusal", "evasive", "state_aligned"))
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        click.echo(f"wrote {len(lines)} prompts to {out}", err=True)
    else:
        for line in lines:
            click.echo(line)


@main.command()
def plugins() -> None:
    """List backends, judges and datasets with the plugin that provides each."""
    from deccp_eval import pluginmanager

    for title, reg in (("backends", pluginmanager.backends()), ("judges", pluginmanager.judges()),
                       ("datasets", pluginmanager.datasets())):
        click.echo(f"{title}:")
        for name, r in sorted(reg.items()):
            desc = getattr(r.obj, "description", "") or (r.obj.__doc__ or "").strip().split("\n")[0]
            click.echo(f"  {name:32} {r.plugin:34} {desc}")


@main.group(cls=Group)
def toy() -> None:
    """The offline toy model (a tiny censored Qwen2 chat model trained here)."""


@toy.command("build")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the HF model folder here (default: the user cache).")
@click.option("--force", is_flag=True, help="Retrain even when cached.")
def toy_build(out: Path | None, force: bool) -> None:
    """Train (about a minute on 2 cores) or reuse the toy model; prints its folder."""
    from deccp_eval import toy as toy_mod

    click.echo(str(toy_mod.build(out, force=force)))


@main.command()
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N question pairs.")
@click.option("-v", "--verbose", count=True)
@db_option
def demo(limit: int | None, verbose: int, db: Path) -> None:
    """Offline end to end: build the toy model, run it on the built-in set (EN+ZH), judge, leaderboard."""
    from deccp_eval.demo import run_demo

    _setup_logging(db, verbose)
    sys.exit(run_demo(db, limit))


if __name__ == "__main__":
    main()
