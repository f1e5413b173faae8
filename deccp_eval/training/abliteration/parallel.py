"""`abliterate --parallel-trials N`: Optuna trials on N Ray workers (one GPU each when the cluster
has GPUs, else one CPU) against the one stored study, so the result and its resumption are the same
as a sequential search's. Each worker loads the base model once and runs trials until the study
holds the asked number (complete or running), then stops."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from deccp_eval.backends.local_weights import resolve_path
from deccp_eval.backends.torch_utils import load_model
from deccp_eval.run.executors.ray import local_node, require_ray
from deccp_eval.training.abliteration import search
from deccp_eval.training.abliteration.direction import DirectionSet
from deccp_eval.training.abliteration.score import Score, Scorer
from deccp_eval.training.abliteration.search import SearchSpace
from deccp_eval.training.abliteration.settings import AbliterateSettings, PromptSets


def _trial_worker(
    settings: dict[str, Any],
    prompts: dict[str, Any],
    dirs: DirectionSet,
    space: dict[str, Any],
    name: str,
    worker: int,
    cwd: str,
) -> int:
    """One Ray worker: its own copy of the model and scorer, trials until the study is full."""
    import optuna

    if os.path.isdir(cwd):  # the driver's relative paths (model, study file) mean the same here
        os.chdir(cwd)
    cfg = AbliterateSettings.model_validate(settings)
    sets = PromptSets.model_validate(prompts)
    model, tokenizer = load_model(resolve_path(cfg.model), options=cfg.load)  # every loading field, as sequential
    scorer = Scorer(
        model,
        tokenizer,
        sets.selection.sensitive,
        sets.selection.texts(),
        split="selection",
        judge=cfg.judge,
        max_tokens=cfg.max_tokens,
        batch_size=cfg.batch_size,
    )
    try:
        study = search.open_study(cfg.study_db, name, cfg.seed + 7919 * worker)  # distinct proposals per worker
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING)
        full = optuna.study.MaxTrialsCallback(cfg.trials, states=states)
        return search.run_search(study, scorer, dirs, SearchSpace.model_validate(space), cfg.trials, callbacks=[full])
    finally:
        scorer.close()


def run_parallel_search(
    settings: AbliterateSettings,
    prompts: PromptSets,
    dirs: DirectionSet,
    space: SearchSpace,
    study: Any,
    name: str,
    on_trial: Callable[[int, Any], None] | None = None,
) -> int:
    """Run the missing trials on `settings.parallel_trials` Ray workers; returns how many completed now."""
    ray = require_ray()
    before = {t.number for t in search.complete_trials(study)}
    if len(before) >= settings.trials:
        return 0
    if not study.trials:  # the classic recipe first, enqueued once here rather than by racing workers
        study.enqueue_trial(space.default_trial())
    owned = not ray.is_initialized()
    if owned:
        ray.init(
            address=settings.ray_address,
            include_dashboard=False,
            log_to_driver=False,
            **local_node(settings.ray_address),
        )
    try:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        task = ray.remote(_trial_worker).options(num_cpus=1, num_gpus=gpus, max_retries=0)
        refs = [
            task.remote(
                settings.model_dump(mode="json"),
                prompts.model_dump(mode="json"),
                dirs,
                space.model_dump(mode="json"),
                name,
                w,
                os.getcwd(),
            )
            for w in range(settings.parallel_trials)
        ]
        ray.get(refs)
    finally:
        if owned:
            ray.shutdown()
    new = [
        t
        for t in search.complete_trials(search.open_study(settings.study_db, name, settings.seed))
        if t.number not in before
    ]
    for t in sorted(new, key=lambda t: t.number):
        if on_trial:
            on_trial(t.number, Score(rates=t.user_attrs["rates"], censorship=t.values[0], kl=t.values[1]))
    return len(new)
