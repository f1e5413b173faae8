"""Re-alignment: a KTO / DPO fine-tune (TRL, LoRA through peft by default) on a preference set
from `deccp_eval.training.preference_pairs`, measured before and after by the harness itself.

The numbers are taken on held-out prompts (by default the `test` split of the evaluation set,
the split the preference export leaves out): censorship (refusal + evasive + state_aligned) per
language, the state_aligned + refusal share, over-refusal on control questions, the share of
expected facts that appear in answers, and the first-token KL on harmless prompts against the
model as it was loaded. They go into `realign.json` with the recipe, beside the merged weights,
so the folder loads with `hf:` and `vllm:` like any other model.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from deccp_eval.backends.contract import BackendOptions, make_backend
from deccp_eval.backends.local_weights import LocalHFBackend
from deccp_eval.backends.torch_utils import LoadOptions, gguf_source
from deccp_eval.base.degenerate import degenerate
from deccp_eval.base.errors import MissingDependency, UsageError
from deccp_eval.base.folders import atomic_folder
from deccp_eval.base.schema import CENSORED, DEFAULT_JUDGE, Prompt
from deccp_eval.datasets.loading import load_dataset
from deccp_eval.judging.facts import facts_stated
from deccp_eval.training.abliteration.export import gguf_lines
from deccp_eval.training.abliteration.pipeline import export_source
from deccp_eval.training.abliteration.score import Scorer
from deccp_eval.training.gguf_export import GGUF_NAME, export_gguf
from deccp_eval.training.preference_pairs import load_meta
from deccp_eval.training.splits import DEFAULT_EVERY, Split, split_of, spread

RECORD_FILE = "realign.json"
Method = Literal["kto", "dpo"]
NEEDS = {"kto": ("prompt", "completion", "label"), "dpo": ("prompt", "chosen", "rejected")}


class Recipe(BaseModel):
    """The training knobs; defaults are a small LoRA recipe that moves a chat model without wrecking it."""

    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(default=2e-4, gt=0)
    beta: float = Field(default=0.1, gt=0)
    epochs: float = Field(default=2.0, gt=0)
    max_steps: int = Field(default=-1, description="> 0 overrides epochs")
    batch_size: int = Field(default=8, ge=2)
    lora: bool = True
    desirable_weight: float | None = Field(default=None, gt=0, description="KTO; None: balanced from the label counts")
    undesirable_weight: float | None = Field(
        default=None, gt=0, description="KTO; None: balanced from the label counts"
    )
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    max_length: int = Field(default=512, ge=16)
    seed: int = 0


class RealignSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    prefs: Path
    out: Path
    method: Method = "kto"
    recipe: Recipe = Field(default_factory=Recipe)
    eval_dataset: str = "deccp"
    eval_split: Split | None = Field(default="test", description="None: every prompt of eval_dataset")
    eval_every: int = Field(default=DEFAULT_EVERY, ge=1)
    eval_limit: int | None = Field(default=200, ge=1)
    judge: str = DEFAULT_JUDGE
    max_tokens: int = Field(default=64, ge=1)
    device: str = "auto"
    dtype: str = "auto"
    export_gguf: Literal["F32", "F16", "Q8_0"] | None = Field(
        default=None, description="also write model.gguf (the model must be a .gguf file)"
    )
    command: str = ""


class Slice(BaseModel):
    """Sensitive-prompt numbers for one category: where a topic-specific censorship (a state line the
    weight edit keeps) shows, which an average over every topic hides."""

    n: int
    censorship: float
    state_or_refusal: float
    facts: float | None = Field(description="None when no prompt of the category has facts in its language")


class Numbers(BaseModel):
    """The harness's view of the model at one moment, on the held-out prompts."""

    n_sensitive: int
    n_control: int
    censorship: dict[str, float] = Field(
        description="lang -> refusal + evasive + state_aligned share; an answer "
        "stating none of its expected facts counts as evasive (Scorer.rates)"
    )
    state_or_refusal: float = Field(description="state_aligned + refusal share, all languages")
    degenerate: dict[str, float] = Field(
        default_factory=dict,
        description="lang -> share of sensitive replies "
        "flagged degenerate (loops, echoes, broken text): a cost, never an answer",
    )
    verdicts: dict[str, int]
    over_refusal: float = Field(description="refusal share on control questions")
    facts: float = Field(description="share of expected_facts found in the answers")
    kl: float = Field(description="mean first-token KL(loaded || now) on harmless prompts")
    categories: dict[str, Slice] = Field(default_factory=dict)
    samples: list[dict[str, str]] = Field(default_factory=list)
    answers: list[str | None] = Field(default_factory=list, exclude=True)  # sensitive first, then controls


class Changed(BaseModel):
    """Replies whose text the fine-tune changed: the collateral a KL number and a verdict share hide (a
    control answered with another topic's fact is still an `answer`)."""

    sensitive: int
    control: int
    control_samples: list[dict[str, str]] = Field(default_factory=list)


class RealignRecord(BaseModel):
    base_model: str
    method: Method
    recipe: Recipe
    prefs: str
    prefs_meta: dict[str, Any]
    train_rows: int
    train_loss: float | None
    eval: dict[str, Any]
    before: Numbers
    after: Numbers
    changed: Changed | None = None
    command: str = ""
    source_gguf: str | None = None  # the GGUF file the model was loaded from (dequantized)
    export_gguf: str | None = None  # type of the model.gguf written beside the safetensors


def model_spec(model: str) -> str:
    """`deccp-toy` or a folder -> `hf:...`; a `BACKEND:MODEL` spec is kept."""
    if ":" in model and not Path(model).exists():
        return model
    return f"hf:{model}"


def load(model: str, device: str = "auto", dtype: str = "auto") -> tuple[Any, Any]:
    """Weights through the backend that names them (`hf:`, `abliterated:`), so every local form works."""
    backend = make_backend(model_spec(model), BackendOptions(load=LoadOptions(device=device, dtype=dtype)))
    if not isinstance(backend, LocalHFBackend):  # transformers weights in this process
        raise UsageError(f"{model}: re-alignment needs local weights (hf:, abliterated: or a folder)")
    backend.check()
    return backend.load()


def eval_prompts(settings: RealignSettings) -> tuple[list[Prompt], list[Prompt]]:
    """(held-out sensitive, held-out control) prompts, whole pairs, capped evenly across the set."""
    data = load_dataset(settings.eval_dataset).prompts
    if settings.eval_split is not None:
        data = [p for p in data if split_of(p.pair_id, settings.eval_every) == settings.eval_split]
    sens = spread([p for p in data if p.kind == "sensitive"], settings.eval_limit)
    ctrl = spread([p for p in data if p.kind == "control"], settings.eval_limit)
    if not sens or not ctrl:
        raise UsageError(
            f"{settings.eval_dataset}: the held-out prompts need sensitive and control questions "
            f"(split {settings.eval_split or 'all'}: {len(sens)} sensitive, {len(ctrl)} control)"
        )
    return sens, ctrl


def _share(verdicts: list[str | None], hits: tuple[str, ...]) -> float:
    """Share of parsed verdicts in `hits`; a failed generation (None) counts in neither part."""
    parsed = [v for v in verdicts if v is not None]
    return sum(v in hits for v in parsed) / max(len(parsed), 1)


def _slice(rows: list[tuple[Prompt, str | None, str | None]]) -> Slice:
    stated = [facts_stated(a or "", p.expected_facts, p.lang) for p, a, _ in rows]
    usable = sum(n for _, n in stated)
    verdicts = [v for _, _, v in rows]
    return Slice(
        n=len(rows),
        censorship=_share(verdicts, CENSORED),
        state_or_refusal=_share(verdicts, ("refusal", "state_aligned")),
        facts=sum(h for h, _ in stated) / usable if usable else None,
    )


def _flagged(rows: list[tuple[Prompt, str | None, str | None]]) -> float:
    """Share of replies (failed generations aside) that `deccp_eval.base.degenerate` flags."""
    got = [degenerate(p.text, a, f) is not None for p, a, f in rows if a is not None]
    return sum(got) / max(len(got), 1)


def numbers(scorer: Any, n_sensitive: int, samples: int = 8) -> Numbers:
    """Answer, judge and KL once; the scorer holds sensitive prompts first, then controls."""
    answers = scorer.answers()
    _, verdicts, _ = scorer.rates(answers, scorer.finish)  # a failed generation: answer None, verdict None
    prompts = scorer.sensitive
    sens = list(zip(prompts[:n_sensitive], answers[:n_sensitive], verdicts[:n_sensitive]))
    ctrl = list(zip(prompts[n_sensitive:], answers[n_sensitive:], verdicts[n_sensitive:]))
    every = _slice(sens)
    parsed = [v for _, _, v in sens if v is not None]
    step = max(1, len(sens) // max(samples, 1))
    return Numbers(
        n_sensitive=len(sens),
        n_control=len(ctrl),
        censorship={
            lang: _share([v for p, _, v in sens if p.lang == lang], CENSORED)
            for lang in sorted({p.lang for p, _, _ in sens})
        },
        degenerate={
            lang: _flagged([(p, a, f) for (p, a, _), f in zip(sens, scorer.finish) if p.lang == lang])
            for lang in sorted({p.lang for p, _, _ in sens})
        },
        state_or_refusal=every.state_or_refusal,
        verdicts={v: parsed.count(v) for v in sorted(set(parsed))},
        over_refusal=_share([v for _, _, v in ctrl], ("refusal",)),
        facts=every.facts or 0.0,
        kl=scorer.kl(),
        categories={
            c: _slice([r for r in sens if r[0].category == c]) for c in sorted({p.category for p, _, _ in sens})
        },
        samples=[{"prompt": p.text, "answer": a, "verdict": v or "unparsed"} for p, a, v in sens[::step][:samples]],
        answers=list(answers),
    )


def changed(prompts: list[Prompt], n_sensitive: int, before: Numbers, after: Numbers, samples: int = 8) -> Changed:
    """How many replies changed text, sensitive and control apart, with the changed controls to read."""
    moved = [(i, p, b, a) for i, (p, b, a) in enumerate(zip(prompts, before.answers, after.answers)) if b != a]
    ctrl = [(p, b, a) for i, p, b, a in moved if i >= n_sensitive]
    return Changed(
        sensitive=len(moved) - len(ctrl),
        control=len(ctrl),
        control_samples=[{"prompt": p.text, "before": b or "", "after": a or ""} for p, b, a in ctrl[:samples]],
    )


def _trainer(method: Method, model: Any, tokenizer: Any, data: Any, recipe: Recipe, workdir: str, device: str) -> Any:
    try:
        from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer
    except ImportError:
        raise MissingDependency("trl", "realign", "Re-alignment") from None
    peft_config = None
    if recipe.lora:
        try:
            from peft import LoraConfig
        except ImportError:
            raise MissingDependency("peft", "realign", "LoRA re-alignment") from None
        peft_config = LoraConfig(
            r=recipe.lora_r,
            lora_alpha=recipe.lora_alpha,
            lora_dropout=0.0,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
    common: dict[str, Any] = dict(
        output_dir=workdir,
        learning_rate=recipe.learning_rate,
        beta=recipe.beta,
        num_train_epochs=recipe.epochs,
        max_steps=recipe.max_steps,
        per_device_train_batch_size=recipe.batch_size,
        max_length=recipe.max_length,
        seed=recipe.seed,
        report_to=[],
        save_strategy="no",
        logging_steps=5,
        disable_tqdm=True,
        use_cpu=str(next(model.parameters()).device) == "cpu",
    )
    config_cls: Any  # KTOConfig goes with KTOTrainer, DPOConfig with DPOTrainer
    trainer_cls: Any
    config_cls, trainer_cls = (KTOConfig, KTOTrainer) if method == "kto" else (DPOConfig, DPOTrainer)
    if method == "kto":
        common.update(zip(("desirable_weight", "undesirable_weight"), kto_weights(data["label"], recipe)))
    trainer = trainer_cls(
        model=model, args=config_cls(**common), train_dataset=data, processing_class=tokenizer, peft_config=peft_config
    )
    from deccp_eval.base import quiet

    if quiet.enabled():  # the loss dicts go to the log file, not the terminal
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(_log_callback())
    return trainer


def _log_callback() -> Any:
    """A trainer callback that writes each logged dict (loss, rewards, ...) to the deccp_eval log."""
    import logging

    from transformers import TrainerCallback

    class LogToFile(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if state.is_world_process_zero and logs:
                logging.getLogger("deccp_eval").info("train step %s: %s", state.global_step, logs)

    return LogToFile()


def kto_weights(labels: list[bool], recipe: Recipe) -> tuple[float, float]:
    """(desirable, undesirable) weights; unset ones balance the two sides' total weight, as the KTO
    paper advises (desirable x n_desirable / undesirable x n_undesirable in [1, 4/3]). An abliterated
    model has few censored answers left, so unweighted KTO would barely push on them."""
    n_good, n_bad = sum(bool(x) for x in labels), sum(not x for x in labels)
    good, bad = recipe.desirable_weight, recipe.undesirable_weight
    if good is None and bad is None:
        good, bad = (1.0, n_good / n_bad) if n_good >= n_bad else (n_bad / n_good, 1.0)
    elif good is None:
        assert bad is not None  # both None is the branch above
        good = bad * n_bad / n_good
    elif bad is None:
        bad = good * n_good / n_bad
    return float(good), float(bad)


def load_prefs(folder: Path, method: Method) -> tuple[Any, dict[str, Any]]:
    """The `train` split of an exported preference set, checked against the method's columns."""
    from datasets import load_from_disk

    meta = load_meta(folder)
    data = load_from_disk(str(folder))
    data = data["train"] if hasattr(data, "keys") else data
    missing = [c for c in NEEDS[method] if c not in data.column_names]
    if missing:
        raise UsageError(
            f"{folder} is a {meta['settings']['format']} set without {', '.join(missing)}: export one "
            f"with `deccp-eval prefs export --model {meta['settings']['model']} --format {method}`"
        )
    if method == "kto" and len(set(data["label"])) < 2:
        raise UsageError(
            f"{folder}: KTO needs desirable and undesirable rows; this set has only label={data['label'][0]}"
        )
    return data, meta


def realign(settings: RealignSettings) -> RealignRecord:
    """Measure, train, merge, measure again, save; returns the record written to realign.json."""
    gguf = export_source(settings.model.removeprefix("hf:"), None, settings.export_gguf)
    data, meta = load_prefs(settings.prefs, settings.method)
    sens, ctrl = eval_prompts(settings)
    train_ids = set(data["pair_id"])
    overlap = sorted(train_ids & {p.pair_id for p in sens + ctrl})
    model, tokenizer = load(settings.model, settings.device, settings.dtype)
    scorer = Scorer(
        model, tokenizer, sens + ctrl, [p.text for p in ctrl], judge=settings.judge, max_tokens=settings.max_tokens
    )
    try:
        before = numbers(scorer, len(sens))
        with tempfile.TemporaryDirectory(prefix="realign-") as work:
            trainer = _trainer(settings.method, model, tokenizer, data, settings.recipe, work, settings.device)
            result = trainer.train()
            trained = trainer.model
            if settings.recipe.lora:
                trained = trained.merge_and_unload()
        trained.eval()
        tokenizer.padding_side = "left"
        scorer.model = trained
        after = numbers(scorer, len(sens))
    finally:
        scorer.close()
    record = RealignRecord(
        base_model=settings.model,
        method=settings.method,
        recipe=settings.recipe,
        prefs=str(settings.prefs),
        prefs_meta=meta,
        train_rows=len(data),
        train_loss=getattr(result, "training_loss", None),
        eval={
            "dataset": settings.eval_dataset,
            "split": settings.eval_split or "all",
            "every": settings.eval_every,
            "judge": settings.judge,
            "max_tokens": settings.max_tokens,
            "n_sensitive": len(sens),
            "n_control": len(ctrl),
            "pairs_also_in_prefs": len(overlap),
        },
        before=before,
        after=after,
        changed=changed(sens + ctrl, len(sens), before, after),
        command=settings.command,
        source_gguf=_gguf_name(settings.model),
        export_gguf=settings.export_gguf if gguf else None,
    )
    save(
        trained,
        tokenizer,
        settings.out,
        record,
        gguf=(gguf, settings.export_gguf) if gguf and settings.export_gguf else None,
    )
    return record


def _gguf_name(model: str) -> str | None:
    found = gguf_source(model.removeprefix("hf:")) if Path(model.removeprefix("hf:")).exists() else None
    return found[1] if found else None


def card(record: RealignRecord) -> str:
    b, a = record.before, record.after
    rows = [
        f"| censorship {lang} | {b.censorship.get(lang, 0):.1%} | {a.censorship.get(lang, 0):.1%} |"
        for lang in sorted(set(b.censorship) | set(a.censorship))
    ]
    rows += [
        f"| degenerate {lang} | {b.degenerate.get(lang, 0):.1%} | {a.degenerate.get(lang, 0):.1%} |"
        for lang in sorted(set(b.degenerate) | set(a.degenerate))
    ]
    e = record.eval
    return "\n".join(
        [
            f"# {record.base_model}, re-aligned ({record.method.upper()})",
            "",
            f"Fine-tuned with TRL on the preference set `{record.prefs}` ({record.train_rows} rows)"
            + (", LoRA merged into the weights" if record.recipe.lora else "")
            + f". Recipe: "
            f"`{record.recipe.model_dump_json()}`.",
            "",
            f"Measured by the harness ({e['judge']} judge) on {e['n_sensitive']} sensitive and "
            f"{e['n_control']} control "
            f"prompts of {e['dataset']} (split {e['split']}); {e['pairs_also_in_prefs']} of their pairs are in the "
            "preference set. As in the abliteration search, a reply the judge calls an answer but that states none "
            "of the prompt's expected facts (when it has any in the prompt's language) counts as evasive here, so "
            "these shares can be above a leaderboard's, which takes the judge's verdicts as they are.",
            "",
            "| | before | after |",
            "|---|---|---|",
            *rows,
            f"| state_aligned + refusal | {b.state_or_refusal:.1%} | {a.state_or_refusal:.1%} |",
            f"| over-refusal on controls | {b.over_refusal:.1%} | {a.over_refusal:.1%} |",
            f"| expected facts found | {b.facts:.1%} | {a.facts:.1%} |",
            f"| first-token KL on harmless | {b.kl:.4f} | {a.kl:.4f} |",
            "",
            *(
                [
                    f"Replies whose text changed: {record.changed.sensitive} of {b.n_sensitive} sensitive, "
                    f"{record.changed.control} of {b.n_control} control. Changed controls:",
                    "",
                    *[f"- {c['prompt']}: {c['before']!r} -> {c['after']!r}" for c in record.changed.control_samples],
                    "",
                ]
                if record.changed
                else []
            ),
            "By category (sensitive prompts): censorship and expected facts found, before -> after.",
            "",
            "| category | n | censorship | state_aligned + refusal | facts |",
            "|---|---|---|---|---|",
            *[
                f"| {c} | {s.n} | {s.censorship:.0%} -> {a.categories[c].censorship:.0%} | {s.state_or_refusal:.0%} -> "
                f"{a.categories[c].state_or_refusal:.0%} | {_pct(s.facts)} -> {_pct(a.categories[c].facts)} |"
                for c, s in b.categories.items()
                if c in a.categories
            ],
            "",
            "Gold references whose model is `facts` were built from the prompt set's expected_facts, not written by "
            "a model.",
            "",
            *gguf_lines(record.source_gguf, record.export_gguf),
            "",
            "Made with:",
            "",
            "```",
            record.command or "(library call)",
            "```",
            "",
        ]
    )


def save(model: Any, tokenizer: Any, out: Path, record: RealignRecord, gguf: tuple[Path, str] | None = None) -> Path:
    """The merged weights, tokenizer, realign.json and card, written atomically (folders.atomic_folder);
    with `gguf` (source file, type) also model.gguf."""

    def write(tmp: Path) -> None:
        if gguf is not None:
            export_gguf(model, gguf[0], tmp / GGUF_NAME, gguf[1])  # type: ignore[arg-type]
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / RECORD_FILE).write_text(record.model_dump_json(indent=2), encoding="utf-8")
        (tmp / "README.md").write_text(card(record), encoding="utf-8")

    return atomic_folder(out, write)


def load_record(folder: Path) -> RealignRecord:
    return RealignRecord.model_validate_json((Path(folder) / RECORD_FILE).read_text(encoding="utf-8"))


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"


def summary(record: RealignRecord, censored_from: float = 0.25) -> list[str]:
    """Headline lines, then one per category censored at least `censored_from` before (the ones to fix)."""
    b, a = record.before, record.after
    langs = sorted(set(b.censorship) | set(a.censorship))
    worst = [
        f"{c} (n={s.n}): censorship {s.censorship:.0%} -> {a.categories[c].censorship:.0%}, state_aligned + "
        f"refusal {s.state_or_refusal:.0%} -> {a.categories[c].state_or_refusal:.0%}, facts {_pct(s.facts)} -> "
        f"{_pct(a.categories[c].facts)}"
        for c, s in b.categories.items()
        if c in a.categories and s.censorship >= censored_from
    ]
    return [
        "(an answer that states none of the prompt's expected facts counts as evasive here)",
        ", ".join(
            f"censorship {lang} {b.censorship.get(lang, 0):.0%} -> {a.censorship.get(lang, 0):.0%}" for lang in langs
        ),
        f"state_aligned + refusal {b.state_or_refusal:.0%} -> {a.state_or_refusal:.0%}; over-refusal on "
        f"controls {b.over_refusal:.0%} -> {a.over_refusal:.0%}; facts {b.facts:.0%} -> {a.facts:.0%}; "
        f"first-token KL {a.kl:.4f}",
        *(
            [
                f"replies changed: {record.changed.sensitive} of {b.n_sensitive} sensitive, {record.changed.control} "
                f"of {b.n_control} control (read them in {RECORD_FILE})"
            ]
            if record.changed
            else []
        ),
        *worst,
    ]
