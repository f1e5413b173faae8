"""Answers other harnesses already paid for, stored as if `run` had made them, with provenance.

One module per format turns a file into `ImportedAnswer`s (reading everything first, so a bad row
stops the import before anything is written); `import_file` resolves prompts (a registered dataset
when the answer's prompt is in it, else a dataset named after the file), keys every answer by the
file's hash (model fingerprint `imported:FORMAT:SHA`, so importing the same file twice stores
nothing new), splits reasoning from answers with `reasoning.split_reasoning`, and writes prompts,
answers, the source's own verdicts and a run record in one transaction per file.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deccp_eval.backends.fingerprint import file_sha256
from deccp_eval.base import pluginmanager
from deccp_eval.base.errors import DatasetError, UsageError, validation_problems
from deccp_eval.base.reasoning import split_reasoning
from deccp_eval.base.schema import Judgment, Prompt, Request, Response, SamplingParams, Verdict, canonical_hash
from deccp_eval.datasets.loading import detect_lang

# --format NAME -> module in this package exposing `read(path) -> Iterator[ImportedAnswer]`
FORMATS: dict[str, str] = {
    "speechmap": "speechmap",
    "promptfoo": "promptfoo",
    "inspect": "inspect_log",
    "jsonl": "answers",
}
# A format's default registered dataset: where its prompts are looked up before falling back to the file's stem.
DEFAULT_DATASET: dict[str, str] = {"speechmap": "speechmap-china"}


class ImportedAnswer(BaseModel):
    """One answer as a reader found it; `where` locates it in the file for error messages."""

    model_config = ConfigDict(extra="forbid")

    where: str  # "line 12" or "results[3]"
    model: str = Field(min_length=1)
    prompt: str | None = None  # the question's text
    prompt_id: str | None = None
    lang: str | None = None
    pair_id: str | None = None
    category: str | None = None
    kind: str | None = None
    response: str = ""
    reasoning: str | None = None  # a separate reasoning field, when the source keeps one
    finish_reason: str | None = None
    error: str | None = None
    created: str | None = None
    provider: str | None = None
    verdicts: dict[str, Verdict] = Field(default_factory=dict)  # the source's own judges: name -> verdict


def validate_row(model: type[BaseModel], obj: Any, path: Path, where: str) -> Any:
    """A source row validated as `model`; a DatasetError naming the file and the row otherwise."""
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: {where}: expected a JSON object, got {type(obj).__name__}")
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise DatasetError(f"{path}: {where}: {validation_problems(exc, quote=True, whole='row')}") from None


def answer(path: Path, **fields: Any) -> ImportedAnswer:
    try:
        return ImportedAnswer(**fields)
    except ValidationError as exc:
        raise DatasetError(f"{path}: {fields.get('where', '?')}: {validation_problems(exc, quote=True)}") from None


def read_answers(path: Path, fmt: str) -> list[ImportedAnswer]:
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}; one of {', '.join(FORMATS)}")
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    reader = importlib.import_module(f"{__name__}.{FORMATS[fmt]}")
    rows = list(reader.read(path))
    if not rows:
        raise DatasetError(f"{path}: no answers found (is it a {fmt} file?)")
    return rows


@dataclass
class ImportTally:
    path: Path
    fingerprint: str
    answers: int = 0
    new_answers: int = 0
    new_judgments: int = 0
    new_prompts: int = 0
    datasets: dict[str, int] = field(default_factory=dict)  # dataset -> answers
    models: list[str] = field(default_factory=list)
    judges: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)


def _registered(name: str | None) -> Any:
    """The registered dataset `name`, or None when it is not a registered name."""
    if not name:
        return None

    found = pluginmanager.datasets().get(name)
    return found.obj() if found else None


def import_file(
    store: Any, path: Path, fmt: str, model: str | None = None, dataset: str | None = None, command: str | None = None
) -> ImportTally:
    """Store every answer of one file (one transaction); returns what was new. `model` renames every
    answer's model; `dataset` is a registered dataset to find prompts in, or the name for prompts the
    file brings (default: the format's registered dataset, then the file's stem)."""
    path = Path(path)
    rows = read_answers(path, fmt)
    sha = file_sha256(path)
    fingerprint = f"imported:{fmt}:{sha[:16]}"
    registered = _registered(dataset) or (None if dataset else _registered(DEFAULT_DATASET.get(fmt)))
    fallback = dataset if dataset and registered is None else path.stem
    by_id = {p.id: p for p in registered.prompts} if registered else {}
    by_text = {(p.text, p.lang): p for p in registered.prompts} if registered else {}

    new_prompts: dict[str, Prompt] = {}
    seen_at: dict[str, str] = {}
    samples: Counter[tuple[str, str, str]] = Counter()
    items: list[tuple[str, Request, Response, str | None]] = []
    providers: Counter[str] = Counter()
    judgments: list[Judgment] = []
    tally = ImportTally(path, fingerprint)
    for row in rows:
        prompt = by_id.get(row.prompt_id or "") if row.prompt_id else None
        if prompt is None and row.prompt:
            text = row.prompt.strip()
            prompt = by_text.get((text, row.lang or detect_lang(text)))
        if prompt is not None:
            assert registered is not None  # prompts are only found in a registered dataset
            ds = registered.name
        else:
            ds = fallback
            if not (row.prompt and row.prompt.strip()):
                where = f" in {registered.name}" if registered else ""
                raise DatasetError(
                    f"{path}: {row.where}: prompt id {row.prompt_id!r} not found{where} and the row has no prompt text"
                )
            text = row.prompt.strip()
            pid = row.prompt_id or f"{fallback}-{canonical_hash(text)[:12]}"
            try:
                prompt = Prompt(
                    id=pid,
                    pair_id=row.pair_id or pid,
                    lang=row.lang or detect_lang(text),
                    text=text,
                    category=row.category or "imported",
                    kind=cast(Any, row.kind or "sensitive"),
                    source=fallback,
                )
            except ValidationError as exc:
                raise DatasetError(f"{path}: {row.where}: {validation_problems(exc, quote=True)}") from None
            old = new_prompts.get(pid)
            if old is not None and (old.text, old.lang) != (prompt.text, prompt.lang):
                raise DatasetError(f"{path}: {row.where}: prompt id {pid!r} has another text than at {seen_at[pid]}")
            new_prompts.setdefault(pid, prompt)
            seen_at.setdefault(pid, row.where)
        name = model or row.model
        sample = samples[(name, ds, prompt.id)]
        samples[(name, ds, prompt.id)] += 1
        request = Request(
            model=name,
            fingerprint=fingerprint,
            prompt_id=prompt.id,
            text=prompt.text,
            params=SamplingParams(),
            sample=sample,
        )
        split = split_reasoning(row.response, row.reasoning)
        response = Response(
            key=request.key,
            text=split.answer,
            reasoning=split.reasoning,
            finish_reason=row.finish_reason or ("length" if split.cut else None),
            error=row.error,
            provider_model=row.model,
        )
        items.append((ds, request, response, row.created))
        if row.provider:
            providers[row.provider] += 1
        for judge, verdict in row.verdicts.items():
            judgments.append(
                Judgment(
                    response_key=request.key,
                    judge=judge,
                    verdict=verdict,
                    rationale=f"imported from {path.name} ({row.where})",
                )
            )
        tally.datasets[ds] = tally.datasets.get(ds, 0) + 1
        if name not in tally.models:
            tally.models.append(name)
    tally.judges = sorted({j.judge for j in judgments})
    tally.answers = len(items)

    runs = []
    for ds in tally.datasets:
        if registered is not None and ds == registered.name:
            version, counts = registered.version, registered.full_counts or registered.lang_counts()
        else:
            version = sha[:12]
            counts = dict(Counter(p.lang for p in new_prompts.values()))
        run_id = f"import-{sha[:12]}-{ds}" + (f"-{canonical_hash(model)[:8]}" if model else "")
        models = sorted({r.model for d, r, _, _ in items if d == ds})
        config = {
            "imported": fmt,
            "file": str(path),
            "sha256": sha,
            "dataset_counts": counts,
            "n_answers": tally.datasets[ds],
            "langs": sorted(counts),
            "providers": dict(providers),
        }
        if command:
            config["command"] = command
        runs.append(
            {
                "id": run_id,
                "dataset": ds,
                "version": version,
                "models": models,
                "judges": tally.judges,
                "config": config,
                "fingerprints": {m: fingerprint for m in models},
            }
        )
        tally.run_ids.append(run_id)
    prompts = [(fallback, p) for p in new_prompts.values()]
    if registered is not None and registered.name in tally.datasets:  # so answers join their prompts
        prompts += [(registered.name, p) for p in registered.prompts]
    new = store.put_import(runs, prompts, items, judgments, where=str(path))
    tally.new_prompts, tally.new_answers, tally.new_judgments = new
    return tally


def iter_json_items(items: Any, path: Path, where: str) -> Iterator[tuple[str, Any]]:
    """(locator, item) for each element of a JSON list found at `where` in the file."""
    if not isinstance(items, list):
        raise DatasetError(f"{path}: {where}: expected a list, got {type(items).__name__}")
    for i, item in enumerate(items):
        yield f"{where}[{i}]", item
