"""`abliterate(settings)`: directions, search, edit, score, save; what `deccp-eval abliterate` runs.

Prompts by default: sensitive = the built-in set's sensitive prompts; harmless = its control
prompts plus the shipped general instructions. Each is split by `pair_id` (`deccp_eval.training.splits`:
a question and its translation stay on one side) into direction / selection / test: most pairs
make the direction, the selection split scores the search's trials, and the test split is scored
once, before and after the chosen edit; only test numbers are reported as the result. With
`eval_dataset` (by default a model alias's held-out set: the toy's own held-out phrasings, on which it
never trained) selection and test come from that set instead, split half and half.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deccp_eval.backends.local_weights import resolve_path
from deccp_eval.backends.torch_utils import gguf_source, load_model
from deccp_eval.base.errors import UsageError
from deccp_eval.base.folders import atomic_folder
from deccp_eval.base.schema import Prompt
from deccp_eval.datasets.loading import load_dataset
from deccp_eval.training.abliteration import search
from deccp_eval.training.abliteration.apply import offloaded_writers, orthogonalize_
from deccp_eval.training.abliteration.direction import DIRECTION_FILE, compute_directions, save_direction
from deccp_eval.training.abliteration.export import (
    AbliterationRecord,
    EvalSettings,
    PromptSource,
    SearchRecord,
    save_folder,
)
from deccp_eval.training.abliteration.parallel import run_parallel_search
from deccp_eval.training.abliteration.score import Score, Scorer
from deccp_eval.training.abliteration.settings import AbliterateSettings, EvalSet, PromptSets
from deccp_eval.training.gguf_export import GGUF_NAME, export_gguf
from deccp_eval.training.splits import by_split, spread


def default_prompts(settings: AbliterateSettings) -> PromptSets:
    every, langs = settings.eval_every, settings.langs
    data = load_dataset(settings.harmful).filter(langs=langs or None, kinds=["sensitive"])
    if not data.prompts:
        raise UsageError(f"{settings.harmful}: no sensitive prompts in {','.join(langs)}")
    sens = by_split(data.prompts, every)
    harmless: dict[str, list[Prompt]] = {"direction": [], "selection": [], "test": []}
    harmless_sources: list[PromptSource] = []
    for ref in settings.harmless:
        loaded = load_dataset(ref)
        parts = by_split(loaded.filter(langs=langs or None, kinds=["control"]).prompts, every)
        for split, rows in parts.items():
            harmless[split] += rows
        harmless_sources.append(
            PromptSource(dataset=ref, version=loaded.version, kinds=["control"], n=len(parts["direction"]))
        )
    if not harmless["direction"]:
        raise UsageError(f"no control prompts in {', '.join(settings.harmless)}")
    ref = settings.eval_ref()
    if ref == settings.harmful:
        source = f"{data.name} {data.version}, held-out pairs (every {every}th)"
        sel = EvalSet(split="selection", sensitive=sens["selection"], harmless=harmless["selection"], source=source)
        test = EvalSet(split="test", sensitive=sens["test"], harmless=harmless["test"], source=source)
    else:
        ev = load_dataset(ref).filter(langs=langs or None)
        parts = by_split(ev.prompts, every=1)
        source = f"{ev.name} {ev.version}"
        sel, test = (
            EvalSet(
                split=name,
                sensitive=[p for p in parts[name] if p.kind == "sensitive"],
                harmless=[p for p in parts[name] if p.kind == "control"],
                source=source,
            )
            for name in ("selection", "test")
        )
    for es in (sel, test):
        if not es.sensitive or not es.harmless:
            raise UsageError(
                f"{ref}: the {es.split} split has no {'sensitive' if not es.sensitive else 'control'} "
                f"prompts in {','.join(langs)}"
            )
    sel = EvalSet(
        split=sel.split,
        sensitive=spread(sel.sensitive, settings.eval_limit),
        harmless=spread(sel.harmless, settings.eval_limit),
        source=sel.source,
    )
    return PromptSets(
        harmful=[p.text for p in sens["direction"]],
        harmless=[p.text for p in harmless["direction"]],
        selection=sel,
        test=test,
        harmful_sources=[
            PromptSource(dataset=settings.harmful, version=data.version, kinds=["sensitive"], n=len(sens["direction"]))
        ],
        harmless_sources=harmless_sources,
    )


@dataclass
class AbliterationResult:
    record: AbliterationRecord
    out: Path
    study: Any = None
    chosen: int | None = None
    ran_trials: int = 0
    notes: list[str] = field(default_factory=list)


def study_settings(settings: AbliterateSettings, prompts: PromptSets) -> dict[str, Any]:
    """What changes a trial's score (so a change starts a new study); trials, seed, pick and the bounds do not."""
    out = {
        "prompts": prompts.fingerprint(),
        "judge": settings.judge,
        "max_tokens": settings.max_tokens,
        "dtype": settings.load.dtype,
        "embeddings": settings.embeddings,
        "norm_preserve": settings.norm_preserve,
        "project_harmless": settings.project_harmless,
    }
    if settings.load.revision:  # other weights under the same name (only when set: existing studies keep their names)
        out["revision"] = settings.load.revision
    return out


def abliterate(
    settings: AbliterateSettings,
    prompts: PromptSets | None = None,
    on_trial: Callable[[int, Any], None] | None = None,
    model_and_tokenizer: tuple[Any, Any] | None = None,
) -> AbliterationResult:
    """Find, choose (on the selection split), apply, score the test split and save; returns the record
    written to `settings.out / abliteration.json`."""
    search.require_optuna()  # fail before loading a model
    gguf = export_source(settings.model, settings.load.gguf_file, settings.export_gguf)
    prompts = prompts or default_prompts(settings)
    if model_and_tokenizer is None:
        model, tokenizer = load_model(resolve_path(settings.model), options=settings.load)
    else:
        model, tokenizer = model_and_tokenizer

    if offloaded_writers(model):  # fail before the search, not after it
        raise UsageError(
            "abliterate edits and saves the weights, but --device-map put some on disk "
            f"({offloaded_writers(model)[0]}, ...): give more --max-memory (GPUs and cpu)"
        )
    dirs = compute_directions(
        model, tokenizer, prompts.harmful, prompts.harmless, settings.batch_size, model_name=settings.model
    )
    common: dict[str, Any] = {
        "judge": settings.judge,
        "max_tokens": settings.max_tokens,
        "batch_size": settings.batch_size,
    }
    selector = Scorer(
        model, tokenizer, prompts.selection.sensitive, prompts.selection.texts(), split="selection", **common
    )
    tester = Scorer(
        model,
        tokenizer,
        prompts.test.sensitive,
        prompts.test.texts(),
        controls=prompts.test.harmless,
        split="test",
        **common,
    )
    try:
        name = search.study_name(settings.model, study_settings(settings, prompts))
        study = search.open_study(settings.study_db, name, settings.seed)
        if "before" in study.user_attrs:
            before = Score.model_validate(study.user_attrs["before"])
        else:
            before = tester.score()
            study.set_user_attr("before", before.model_dump(mode="json"))
        space = search.SearchSpace(
            n_layers=dirs.n_positions - 1,
            embeddings=settings.embeddings,
            norm_preserve=settings.norm_preserve,
            project_harmless=settings.project_harmless,
        )
        if settings.parallel_trials > 1:
            ran = run_parallel_search(settings, prompts, dirs, space, study, name, on_trial)
            study = search.open_study(settings.study_db, name, settings.seed)
        else:
            ran = search.run_search(study, selector, dirs, space, settings.trials, on_trial)
        trial, why = search.choose(study, settings.pick, settings.max_kl, settings.max_censorship)
        params = search.trial_params(trial)
        direction = dirs.direction(params.direction_index, params.project_harmless)
        info = orthogonalize_(model, direction, params)
        after = tester.score()
    finally:
        selector.close()
        tester.close()
    n_trials = len(search.complete_trials(study))
    record = AbliterationRecord(
        base_model=settings.model,
        direction_layer=params.direction_index,
        params=params,
        layer_weights=info["layer_weights"],
        edited=info["edited"],
        untied_lm_head=info["untied_lm_head"],
        harmful=prompts.harmful_sources
        or [PromptSource(dataset="custom", version=prompts.fingerprint(), kinds=["sensitive"], n=len(prompts.harmful))],
        harmless=prompts.harmless_sources
        or [PromptSource(dataset="custom", version=prompts.fingerprint(), kinds=["control"], n=len(prompts.harmless))],
        eval=EvalSettings(
            judge=settings.judge,
            max_tokens=settings.max_tokens,
            n_sensitive=len(prompts.test.sensitive),
            n_harmless=len(prompts.test.harmless),
            n_selection=len(prompts.selection.sensitive),
            source=prompts.test.source,
            langs=sorted({p.lang for p in prompts.test.sensitive}),
        ),
        before=before,
        after=after,
        selection=search.trial_score(trial),
        search=SearchRecord(
            study=name,
            storage=str(settings.study_db),
            trials=n_trials,
            chosen_trial=trial.number,
            why=why,
            max_kl=settings.max_kl,
            max_censorship=settings.max_censorship,
            seed=settings.seed,
        ),
        source_gguf=(gguf_source(resolve_path(settings.model), settings.load.gguf_file) or (None, None))[1],
        export_gguf=settings.export_gguf,
    )

    def extra(tmp: Path) -> None:
        save_direction(tmp / DIRECTION_FILE, dirs, direction, params.model_dump(mode="json"))
        if gguf is not None and settings.export_gguf:
            export_gguf(model, gguf, tmp / GGUF_NAME, settings.export_gguf)

    out = _atomic_save(model, tokenizer, settings.out, record, extra)
    notes = [why]
    if after.kl > settings.max_kl:
        notes.append(f"test-split KL {after.kl:.4f} is above --max-kl {settings.max_kl:g}")
    if after.censorship > settings.max_censorship:
        notes.append(
            f"test-split censorship {after.censorship:.3f} is above --max-censorship {settings.max_censorship:g}"
        )
    return AbliterationResult(record=record, out=out, study=study, chosen=trial.number, ran_trials=ran, notes=notes)


def export_source(model: str, gguf_file: str | None, export: str | None) -> Path | None:
    """The GGUF file `model` is loaded from, when a GGUF export is asked for; a UsageError (before
    any work) when the model does not come from one."""
    if not export:
        return None
    found = gguf_source(resolve_path(model), gguf_file)
    if found is None or not (Path(found[0]) / found[1]).is_file():
        raise UsageError(
            f"--export-gguf needs a model loaded from a local .gguf file ({model} is not one); "
            "the safetensors folder is written either way"
        )
    return Path(found[0]) / found[1]


def _atomic_save(
    model: Any, tokenizer: Any, out: Path, record: AbliterationRecord, extra: Callable[[Path], Any]
) -> Path:
    """The edited model, its record and `extra` files, written atomically (folders.atomic_folder)."""

    def write(tmp: Path) -> None:
        save_folder(model, tokenizer, tmp, record)
        extra(tmp)

    return atomic_folder(out, write)
