"""Gold reference answers: generated once by strong models, stored, exported, imported, reviewed."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import ConfigDict

from deccp_eval.backends.contract import BackendOptions, make_backend
from deccp_eval.base.jsonl import read_jsonl_as
from deccp_eval.base.schema import GoldReference, Prompt, Request, SamplingParams
from deccp_eval.datasets.loading import Dataset
from deccp_eval.judging.templates import render, template_hash
from deccp_eval.run.executors.contract import Executor
from deccp_eval.run.runner import ModelTally, generate, new_run_id
from deccp_eval.store.db import Store
from deccp_eval.store.sql import now

GOLD_TEMPLATE = "gold_answer.j2"


def gold_dataset_name(dataset: str) -> str:
    """Gold generations are stored as responses under their own dataset name, so they are
    cached, resumable and retried like any generation, yet never counted on the leaderboard."""
    return f"gold:{dataset}"


def gold_requests(
    prompts: Iterable[Prompt], model: str, samples: int, params: SamplingParams, fingerprint: str = ""
) -> list[Request]:
    return [
        Request(
            model=model,
            fingerprint=fingerprint,
            prompt_id=p.id,
            sample=s,
            params=params,
            text=render(
                GOLD_TEMPLATE, question=p.text, expected_facts=p.expected_facts, lang="en" if p.lang == "en" else "zh"
            ),
        )
        for p in prompts
        for s in range(samples)
    ]


def generate_gold(
    store: Store,
    dataset: Dataset,
    models: list[str],
    options: dict[str, BackendOptions],
    samples: int = 1,
    params: SamplingParams | None = None,
    retry_errors: bool = False,
    executor: Executor | None = None,
) -> list[ModelTally]:
    """Reference answers for every sensitive prompt (each language) from each model."""
    params = params or SamplingParams(temperature=0.0 if samples == 1 else 0.7, max_tokens=1024)
    sensitive = [p for p in dataset.prompts if p.kind == "sensitive"]
    thash = template_hash(GOLD_TEMPLATE)
    name = gold_dataset_name(dataset.name)
    store.put_prompts(dataset.name, dataset.prompts)
    run_id = new_run_id()
    backends = {
        m: executor.backend(m, options.get(m, BackendOptions()))
        if executor
        else make_backend(m, options.get(m, BackendOptions()))
        for m in models
    }
    fingerprints = {m: b.fingerprint() for m, b in backends.items()}
    store.start_run(
        run_id, name, dataset.version, models, [], {"params": params.model_dump(), "samples": samples}, fingerprints
    )
    tallies = []
    for model in models:
        requests = gold_requests(sensitive, model, samples, params, fingerprints[model])
        proxy = Dataset(name=name, version=dataset.version, prompts=[])
        tallies.append(
            generate(
                store,
                proxy,
                model,
                requests,
                options.get(model, BackendOptions()),
                run_id,
                retry_errors=retry_errors,
                backend=backends[model],
            )
        )
        for req in requests:
            resp = store.get_response(req.key)
            if resp is not None and resp.error is None and resp.text.strip():
                store.put_gold(
                    dataset.name,
                    GoldReference(
                        prompt_id=req.prompt_id,
                        model=model,
                        text=resp.text,
                        created=now(),
                        template_hash=thash,
                        sample=req.sample,
                    ),
                )
    store.finish_run(run_id, "failed" if any(t.errors for t in tallies) else "done")
    return tallies


class GoldRow(GoldReference):
    """One line of an exported reference file: the reference, its dataset, and the question for reviewers."""

    model_config = ConfigDict(extra="ignore")

    dataset: str
    lang: str | None = None
    prompt: str | None = None


def export_gold(store: Store, path: Path, dataset: str | None = None) -> int:
    prompts: dict[str, dict[str, Prompt]] = {}
    lines = []
    for ds, ref in store.gold(dataset):
        if ds not in prompts:
            prompts[ds] = {p.id: p for p in store.prompts(ds)}
        p = prompts[ds].get(ref.prompt_id)
        row = GoldRow(dataset=ds, lang=p.lang if p else None, prompt=p.text if p else None, **ref.model_dump())
        lines.append(row.model_dump_json())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)


def import_gold(store: Store, path: Path) -> int:
    count = 0
    for row in read_jsonl_as(path, GoldRow):
        store.put_gold(
            row.dataset, GoldReference.model_validate(row.model_dump(include=set(GoldReference.model_fields)))
        )
        count += 1
    return count
