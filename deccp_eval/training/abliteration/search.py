"""Multi-objective Optuna search over direction position and layer-weight kernel.

Three objectives, scored on the selection split only: the share not answered (refusal + evasive +
state_aligned, content-free answers counted as evasive, plus degenerate replies the judge called
answers: `VerdictRates.not_answered`) on sensitive prompts, minimised; the
content share (replies that state an expected fact), maximised; first-token KL on harmless
prompts, minimised. The pick rule (`choose`): the trial with the most content among those with
censorship <= max_censorship and KL <= max_kl. The study lives in SQLite (Optuna RDB storage)
under a name derived from the model and every setting that changes a score, so running again
with a larger `--trials` continues the same study instead of starting over.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from deccp_eval.base.errors import MissingDependency, UsageError
from deccp_eval.base.schema import canonical_hash
from deccp_eval.training.abliteration.apply import AbliterationParams, Kernel, applied
from deccp_eval.training.abliteration.direction import DirectionSet
from deccp_eval.training.abliteration.score import Score, Scorer


class SearchSpace(BaseModel):
    """Bounds of the sampled parameters; positions are in layers."""

    model_config = ConfigDict(extra="forbid")

    n_layers: int = Field(ge=1)
    max_weight: tuple[float, float] = (0.8, 1.5)
    min_weight_frac: tuple[float, float] = (0.0, 1.0)
    embeddings: bool = False
    norm_preserve: bool = False
    project_harmless: bool = False

    @property
    def direction_bounds(self) -> tuple[float, float]:
        return 1.0, float(self.n_layers)  # 0 (the embeddings) is the same token for every prompt

    def suggest(self, trial: Any) -> AbliterationParams:
        lo, hi = self.direction_bounds
        top = trial.suggest_float("max_weight", *self.max_weight)
        kernel = Kernel(
            peak=trial.suggest_float("peak", 0.0, max(self.n_layers - 1, 0) + 1e-9),
            max_weight=top,
            min_weight=top * trial.suggest_float("min_weight_frac", *self.min_weight_frac),
            width=trial.suggest_float("width", 1.0, max(float(self.n_layers), 1.0 + 1e-9)),
        )
        return AbliterationParams(
            direction_index=trial.suggest_float("direction_index", lo, hi),
            kernel=kernel,
            embeddings=self.embeddings,
            norm_preserve=self.norm_preserve,
            project_harmless=self.project_harmless,
        )

    def default_trial(self) -> dict[str, float]:
        """The classic recipe, tried first: direction at 60% depth, weight 1 on every layer."""
        lo, hi = self.direction_bounds
        return {
            "max_weight": 1.0,
            "min_weight_frac": 1.0,
            "peak": (self.n_layers - 1) / 2,
            "width": float(max(self.n_layers, 1)),
            "direction_index": float(min(hi, max(lo, round(0.6 * self.n_layers)))),
        }


def study_name(model: str, settings: dict[str, Any]) -> str:
    """Stable per model and scoring settings: the same call resumes, a changed setting starts afresh."""
    import re

    slug = re.sub(r"[^A-Za-z0-9]+", "-", model).strip("-")[-40:] or "model"
    payload = {"model": model, "objective": OBJECTIVE_VERSION, **settings}
    return f"abliterate-{slug}-{canonical_hash(payload)[:10]}"


def storage_url(path: str | Path) -> str:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path.resolve()}"


DIRECTIONS = ("minimize", "maximize", "minimize")  # censorship, content, KL
OBJECTIVE_VERSION = 3  # in the study name: studies of older objectives (no degenerate cost) are not resumed


def require_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise MissingDependency("optuna", "abliterate", "The abliteration search") from None
    return optuna


def open_study(path: str | Path, name: str, seed: int) -> Any:
    """Create or load the stored study; the sampler seed moves on with the trials already stored,
    so a resumed study does not replay the random start-up points it has already tried."""
    optuna = require_optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = storage_url(path)
    study = optuna.create_study(storage=url, study_name=name, directions=list(DIRECTIONS), load_if_exists=True)
    sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials), multivariate=True)
    return optuna.load_study(study_name=name, storage=url, sampler=sampler)


def complete_trials(study: Any) -> list[Any]:
    import optuna

    return [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]


def run_search(
    study: Any,
    scorer: Scorer,
    dirs: DirectionSet,
    space: SearchSpace,
    trials: int,
    on_trial: Callable[[int, Score], None] | None = None,
    callbacks: list[Any] | None = None,
) -> int:
    """Run until the study holds `trials` complete trials; returns how many ran now (at most:
    `callbacks` may stop it sooner, as parallel workers sharing the study do)."""
    import optuna

    model = scorer.model
    done = len(complete_trials(study))
    todo = max(0, trials - done)
    if todo and not study.trials:
        study.enqueue_trial(space.default_trial())

    def objective(trial: optuna.trial.Trial) -> tuple[float, float, float]:
        params = space.suggest(trial)
        direction = dirs.direction(params.direction_index, params.project_harmless)
        with applied(model, direction, params):
            score = scorer.score()
        trial.set_user_attr("params", params.model_dump(mode="json"))
        trial.set_user_attr("rates", score.rates.model_dump(mode="json"))
        trial.set_user_attr("score", score.model_dump(mode="json"))
        if on_trial:
            on_trial(trial.number, score)
        return score.rates.not_answered, score.content, score.kl

    if todo:
        study.optimize(objective, n_trials=todo, gc_after_trial=False, catch=(), callbacks=callbacks)
    return todo


def _rank(t: Any) -> tuple[float, float, float, int]:
    censorship, content, kl = t.values
    return -content, censorship, kl, t.number


def pareto(study: Any) -> list[Any]:
    """Pareto-optimal complete trials, most content first."""
    return sorted(study.best_trials, key=_rank)


def choose(study: Any, pick: int | None = None, max_kl: float = 0.1, max_censorship: float = 0.1) -> tuple[Any, str]:
    """(trial, why). The rule: `pick` when given; else the most content among trials with censorship <=
    max_censorship and KL <= max_kl (ties: less censorship, then less KL); else, among trials with KL <=
    max_kl, the least censorship (then most content); else the lowest KL."""
    done = {t.number: t for t in complete_trials(study)}
    if not done:
        raise UsageError("the study has no complete trial")
    if pick is not None:
        if pick not in done:
            raise UsageError(f"--pick {pick}: no complete trial with that number (have {sorted(done)})")
        return done[pick], f"trial {pick} picked by hand"
    trials = list(done.values())
    ok = [t for t in trials if t.values[0] <= max_censorship and t.values[2] <= max_kl]
    if ok:
        return min(
            ok, key=_rank
        ), f"most content among trials with censorship <= {max_censorship:g} and KL <= {max_kl:g}"
    under = [t for t in trials if t.values[2] <= max_kl]
    if under:
        best = min(under, key=lambda t: (t.values[0], -t.values[1], t.values[2], t.number))
        return best, (
            f"no trial has censorship <= {max_censorship:g} with KL <= {max_kl:g}: took the least "
            "censored one with KL in bounds"
        )
    best = min(trials, key=lambda t: (t.values[2], t.values[0], t.number))
    return best, f"no trial has KL <= {max_kl:g}: took the lowest-KL one"


def trial_score(trial: Any) -> Any:
    """The selection-split Score stored with a trial (best-of-N when it is the chosen one)."""
    return Score.model_validate(trial.user_attrs["score"])


def trial_params(trial: Any) -> AbliterationParams:
    return AbliterationParams.model_validate(trial.user_attrs["params"])


def pareto_table(study: Any, chosen: int | None = None) -> Any:
    """A rich table of the Pareto front with each trial's verdict rates and parameters."""
    from rich import box
    from rich.table import Table

    table = Table(
        title=f"Pareto front on the selection split: {study.study_name} "
        f"({len(complete_trials(study))} trials; * = applied)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for col in (
        "trial",
        "censored",
        "content",
        "refusal",
        "evasive",
        "state",
        "KL",
        "dir",
        "peak",
        "max w",
        "min w",
        "width",
    ):
        table.add_column(col, justify="right", no_wrap=True)
    for t in pareto(study):
        p = trial_params(t)
        r = t.user_attrs.get("rates", {})
        mark = " *" if t.number == chosen else ""
        table.add_row(
            f"{t.number}{mark}",
            f"{t.values[0]:.3f}",
            f"{t.values[1]:.3f}",
            f"{r.get('refusal', 0):.3f}",
            f"{r.get('evasive', 0):.3f}",
            f"{r.get('state_aligned', 0):.3f}",
            f"{t.values[2]:.4f}",
            f"{p.direction_index:.2f}",
            f"{p.kernel.peak:.2f}",
            f"{p.kernel.max_weight:.2f}",
            f"{p.kernel.min_weight:.2f}",
            f"{p.kernel.width:.2f}",
        )
    return table
