"""A run: plan requests, skip what the store holds, generate, judge, record. Safe to kill and rerun."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, cast

from deccp_eval.backends.contract import Backend, BackendOptions, make_backend
from deccp_eval.base.progress import bar
from deccp_eval.base.schema import Judgment, Request, SamplingParams, judgment_key, text_hash
from deccp_eval.datasets.loading import Dataset
from deccp_eval.judging.contract import Judge, JudgeItem, judge_answers, make_judge
from deccp_eval.run.executors.contract import Executor
from deccp_eval.run.workers import Worker
from deccp_eval.run.writer import AnswerWriter
from deccp_eval.store.db import Store

log = logging.getLogger("deccp_eval")


@dataclass
class ModelTally:
    model: str
    planned: int = 0
    cached: int = 0
    generated: int = 0
    errors: int = 0


@dataclass
class JudgeTally:
    judge: str
    judged: int = 0
    cached: int = 0
    unparsed: int = 0
    errors: int = 0


@dataclass
class RunSummary:
    run_id: str
    models: list[ModelTally] = field(default_factory=list)
    judges: list[JudgeTally] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(m.errors for m in self.models) or any(j.errors for j in self.judges)


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def plan(
    dataset: Dataset, model: str, params: SamplingParams, samples: int = 1, fingerprint: str = ""
) -> list[Request]:
    return [
        Request(model=model, fingerprint=fingerprint, prompt_id=p.id, text=p.text, params=params, sample=s)
        for p in dataset.prompts
        for s in range(samples)
    ]


def generate(
    store: Store,
    dataset: Dataset,
    model: str,
    requests: Sequence[Request],
    options: BackendOptions,
    run_id: str,
    no_cache: bool = False,
    retry_errors: bool = False,
    backend: Backend | None = None,
) -> ModelTally:
    """Send what the store lacks (stored errors too with `retry_errors`, everything with `no_cache`).

    Cooperates with other workers on the same store: keys are leased in chunks before they are
    sent (`workers.Worker.run`), keys another live worker holds are left to it and waited for
    at the end, and a dead worker's keys are adopted once its lease expires."""
    tally = ModelTally(model, planned=len(requests))
    keyed = [(r.key, r) for r in requests]  # a key is a hash of the request: made once, here
    store.link(run_id, [k for k, _ in keyed])
    status = {} if no_cache else store.response_status(k for k, _ in keyed)
    by_key = {k: r for k, r in keyed if k not in status or (retry_errors and status[k] is False)}
    tally.cached = len(requests) - len(by_key)
    if not by_key:
        return tally
    backend = backend or make_backend(model, options)
    if options.dry_run and not backend.priced_dry_run:  # e.g. a local engine: nothing to price, nothing sent
        from deccp_eval.base.progress import console

        console.print(f"dry run: {model}: {len(by_key)} requests (local)", highlight=False)
        return tally
    backend.check()
    with (
        bar(f"generate {backend.progress_label}", len(by_key), unit="answers") as advance,
        Worker(store) as worker,
        AnswerWriter(store.path, replace=True) as writer,
    ):

        def on_response(resp) -> None:
            writer.put(by_key[resp.key], dataset.name, resp)
            if resp.error:
                tally.errors += 1
                log.warning("%s %s: %s", model, by_key[resp.key].prompt_id, resp.error)
            else:
                tally.generated += 1
            advance(1, tokens=resp.tokens_out or 0)

        streams = backend.streams

        def send(keys: Iterable[str]) -> None:
            requests = (by_key[k] for k in keys)
            try:
                # a streaming backend reads the lazy iterable as it goes (Backend.streams)
                backend.generate(cast(Sequence[Request], requests) if streams else list(requests), on_response)
            finally:
                writer.flush()  # before the worker looks at the store again

        try:
            done_elsewhere = worker.run(
                list(by_key),
                send,
                chunk=chunk_size(options),
                redo_errors=retry_errors,
                redo_all=no_cache,
                stream=streams,
            )
        finally:
            backend.close()
        tally.cached += done_elsewhere
        advance(done_elsewhere)
    return tally


def chunk_size(options: BackendOptions) -> int:
    """Keys leased at a time: enough to keep a remote engine's slots or a local batch full
    (`DECCP_EVAL_LEASE_CHUNK` overrides)."""
    if os.environ.get("DECCP_EVAL_LEASE_CHUNK"):
        return max(1, int(os.environ["DECCP_EVAL_LEASE_CHUNK"]))
    return max(options.batch_size, 8 * options.max_concurrency)


def judge_items(
    store: Store, rows: Sequence, judge: Judge, references: dict[str, str] | None = None
) -> dict[str, JudgeItem]:
    """Judge items for stored responses with no judgment under this judge's current key: its
    template, settings and (when it reads references) the reference text, so a reference added or
    changed after judging, or a changed judge setting, re-grades exactly the items it affects."""
    settings = judge.settings_hash()
    wanted: dict[str, tuple[Any, str | None]] = {}
    for r in rows:
        if r.error is not None:
            continue
        ref = references.get(r.prompt_id) if references and judge.uses_reference else None
        wanted[judgment_key(r.key, judge.id, judge.template_hash, text_hash(ref), settings)] = (r, ref)
    done = store.judged_keys(wanted)
    items = {}
    for jkey, (r, ref) in wanted.items():
        if jkey in done:
            continue
        items[jkey] = JudgeItem(
            response_key=r.key,
            prompt=r.prompt_text,
            response=r.text or "",
            reasoning=r.reasoning,
            lang=r.lang,
            reference=ref,
            expected_facts=list(r.expected_facts),
        )
    return items


def judge_rows(store: Store, rows: Sequence, judge: Judge, references: dict[str, str] | None = None) -> JudgeTally:
    """Judge what has no judgment under the current key; leased like generation, so several
    workers on one store never pay a judge twice for one item."""
    tally = JudgeTally(judge.id)
    items = judge_items(store, rows, judge, references)
    tally.cached = sum(1 for r in rows if r.error is None) - len(items)
    if not items:
        return tally
    judge.check()
    refs = {i.response_key: text_hash(i.reference) for i in items.values()}
    settings = judge.settings_hash()
    with bar(f"judge {judge.id}", len(items)) as advance, Worker(store) as worker:

        def on_judgment(j: Judgment) -> None:
            j = j.model_copy(update={"reference_hash": refs.get(j.response_key, ""), "settings_hash": settings})
            store.put_judgment(j)
            tally.judged += 1
            tally.unparsed += j.parse_status.value == "unparsed"
            advance(1)

        try:
            elsewhere = worker.run(
                list(items),
                lambda keys: judge_answers(judge, [items[k] for k in keys], on_judgment),
                chunk=chunk_size(judge.options),
                table="judgments",
            )
        finally:
            judge.close()
        tally.cached += elsewhere
        advance(elsewhere)
    tally.errors = len(items) - tally.judged - elsewhere
    return tally


def run(
    store: Store,
    dataset: Dataset,
    models: Sequence[str],
    judges: Sequence[str],
    params: SamplingParams,
    samples: int = 1,
    options: dict[str, BackendOptions] | None = None,
    judge_options: BackendOptions | None = None,
    no_cache: bool = False,
    retry_errors: bool = False,
    run_id: str | None = None,
    param_overrides: dict[str, dict] | None = None,
    executor: Executor | None = None,
    command: str | None = None,
) -> RunSummary:
    """Generate for every model, then judge this run's responses with every judge; `command` (the
    command line that asked for the run) is kept in the run's config for provenance. The `executor`
    places the models and the judges' local models alike (the store is written here either way)."""
    run_id = run_id or new_run_id()
    options = options or {}
    judge_objs = [make_judge(spec, judge_options, executor.backend if executor else None) for spec in judges]
    for j in judge_objs:
        j.check()
    backends = {
        m: executor.backend(m, options.get(m, BackendOptions()))
        if executor
        else make_backend(m, options.get(m, BackendOptions()))
        for m in models
    }
    fingerprints = {m: b.fingerprint() for m, b in backends.items()}
    store.put_prompts(dataset.name, dataset.prompts)
    config = {
        "params": params.model_dump(),
        "samples": samples,
        "no_cache": no_cache,
        "retry_errors": retry_errors,
        "langs": sorted({p.lang for p in dataset.prompts}),
        "n_prompts": len(dataset.prompts),
        "dataset_counts": dataset.full_counts or dataset.lang_counts(),
    }
    if command:
        config["command"] = command
    store.start_run(run_id, dataset.name, dataset.version, models, [j.id for j in judge_objs], config, fingerprints)
    summary = RunSummary(run_id)
    try:
        for model in models:
            override = (param_overrides or {}).get(model) or {}
            model_params = SamplingParams.model_validate({**params.model_dump(), **override})
            requests = plan(dataset, model, model_params, samples, fingerprints[model])
            summary.models.append(
                generate(
                    store,
                    dataset,
                    model,
                    requests,
                    options.get(model, BackendOptions()),
                    run_id,
                    no_cache=no_cache,
                    retry_errors=retry_errors,
                    backend=backends[model],
                )
            )
        rows = store.response_rows(run_id=run_id)
        references = gold_texts(store, dataset.name)
        for judge in judge_objs:
            summary.judges.append(judge_rows(store, rows, judge, references))
    except BaseException:
        store.finish_run(run_id, "interrupted")
        raise
    store.finish_run(run_id, "failed" if summary.failed else "done")
    return summary


def gold_texts(store: Store, dataset: str) -> dict[str, str]:
    """prompt id -> the reference to judge against: reviewed ones first, then the newest."""
    best: dict[str, tuple[bool, str, str]] = {}
    for _, ref in store.gold(dataset):
        rank = (ref.reviewed, ref.created, ref.text)
        if ref.prompt_id not in best or rank > best[ref.prompt_id]:
            best[ref.prompt_id] = rank
    return {pid: rank[2] for pid, rank in best.items()}
