"""Preference sets from the store: gold references against a model's censored answers.

Everything a re-alignment needs is already stored: gold references per prompt (`gold` table),
the model's answers and their verdicts. This module pairs them into rows TRL reads as they are
(DPO: prompt/chosen/rejected; KTO: prompt/completion/label; SFT: prompt/completion), in the
conversational format so the trainer applies the model's own chat template, plus a retain part
(control questions with the model's own answers) so the fine-tune does not teach new refusals.
Prompts whose pair_id falls in the `test` split (deccp_eval.training.splits) are left out by default, so
the numbers measured after training are on questions the fine-tune never saw.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from deccp_eval.base.errors import UsageError
from deccp_eval.base.schema import CENSORED, GoldReference
from deccp_eval.datasets.loading import detect_lang
from deccp_eval.judging.facts import usable_facts
from deccp_eval.store.db import Store, latest_judgments, pick_judge
from deccp_eval.store.sql import now
from deccp_eval.training.splits import DEFAULT_EVERY, Split, split_of

Format = Literal["kto", "dpo", "sft"]
FORMATS: tuple[str, ...] = ("kto", "dpo", "sft")
CARD_FILE = "README.md"
JSONL_FILE = "prefs.jsonl"
META_FILE = "prefs.json"
GOLD_HINT = (
    "`deccp-eval gold -m MODEL --lang {langs}` (strong models write them) or `deccp-eval gold import FILE.jsonl`"
)


class PrefSettings(BaseModel):
    """What decides a preference set's rows; written to prefs.json and the card."""

    model_config = ConfigDict(extra="forbid")

    model: str
    format: Format = "kto"
    judge: str | None = None
    dataset: str | None = None
    exclude_split: Split | None = "test"
    split_every: int = Field(default=DEFAULT_EVERY, ge=1)
    retain_share: float = Field(default=0.3, ge=0.0, lt=1.0, description="share of retain rows in the set")
    langs: list[str] | None = None
    seed: int = 0
    command: str = ""


class PrefRow(BaseModel):
    """One exported row; the TRL columns plus where it came from."""

    model_config = ConfigDict(extra="forbid")

    prompt: list[dict[str, str]]
    chosen: list[dict[str, str]] | None = None
    rejected: list[dict[str, str]] | None = None
    completion: list[dict[str, str]] | None = None
    label: bool | None = None
    pair_id: str
    prompt_id: str
    lang: str
    category: str
    verdict: str
    reference_model: str
    part: Literal["prefs", "retain"]

    def columns(self, fmt: Format) -> dict[str, Any]:
        keep = {"dpo": ("chosen", "rejected"), "kto": ("completion", "label"), "sft": ("completion",)}[fmt]
        base = {"prompt": self.prompt, **{k: getattr(self, k) for k in keep}}
        return {
            **base,
            **self.model_dump(
                include={"pair_id", "prompt_id", "lang", "category", "verdict", "reference_model", "part"}
            ),
        }


class PrefSet(BaseModel):
    settings: PrefSettings
    rows: list[PrefRow]
    excluded_pairs: int = 0
    judge: str = ""

    def counts(self) -> dict[str, dict[str, int]]:
        """verdict -> lang -> rows (retain rows under `retain:VERDICT`)."""
        out: dict[str, Counter[str]] = {}
        for r in self.rows:
            name = r.verdict if r.part == "prefs" else f"retain:{r.verdict}"
            out.setdefault(name, Counter())[r.lang] += 1
        return {k: dict(v) for k, v in sorted(out.items())}


def _msg(role: str, text: str) -> list[dict[str, str]]:
    return [{"role": role, "content": text}]


def _gold_by_prompt(store: Store, dataset: str | None) -> dict[str, list[GoldReference]]:
    """prompt_id -> references, reviewed ones first (then by model and sample, a stable order)."""
    out: dict[str, list[GoldReference]] = {}
    for _, ref in store.gold(dataset):
        if ref.text.strip():
            out.setdefault(ref.prompt_id, []).append(ref)
    for refs in out.values():
        refs.sort(key=lambda r: (not r.reviewed, r.model, r.sample))
    return out


def _judged(store: Store, model: str, judge: str | None, dataset: str | None) -> tuple[list[Any], dict[str, str], str]:
    rows = [r for r in store.response_rows(models=[model], dataset=dataset) if not r.error and (r.text or "").strip()]
    if not rows:
        raise UsageError(
            f"no stored answers for {model!r}"
            + (f" on {dataset}" if dataset else "")
            + f": run `deccp-eval run -m {model}` first"
        )
    judgments = latest_judgments(store, rows)
    counts = Counter(j for (_, j) in judgments)
    if judge and judge not in counts or not counts:
        raise UsageError(
            f"no judgments for {model!r}"
            + (f" by {judge!r}" if judge else "")
            + f": run `deccp-eval judge -m {model}"
            + (f" -j {judge}" if judge else "")
            + "`"
        )
    chosen = pick_judge(counts, judge, counts)
    assert chosen is not None
    verdicts = {k: j.verdict for (k, j_id), j in judgments.items() if j_id == chosen and j.verdict}
    return rows, verdicts, chosen


def _lang_of(text: str) -> str:
    return detect_lang(text)


def _same_lang(expected: str, text: str) -> bool:
    """A ZH prompt needs a ZH reference; `detect_lang` says zh / zh-hant / en, so compare the family."""
    got = _lang_of(text)
    return got.split("-")[0] == expected.split("-")[0]


def build(store: Store, settings: PrefSettings) -> PrefSet:
    """Rows for `settings.format`; a clear error when the store cannot make a useful set."""
    rows, verdicts, judge = _judged(store, settings.model, settings.judge, settings.dataset)
    if settings.langs:
        rows = [r for r in rows if r.lang in set(settings.langs)]
    excluded = {
        r.pair_id
        for r in rows
        if settings.exclude_split and split_of(r.pair_id, settings.split_every) == settings.exclude_split
    }
    rows = [r for r in rows if r.pair_id not in excluded]
    sensitive = [r for r in rows if r.kind == "sensitive" and verdicts.get(r.key)]
    censored = [r for r in sensitive if verdicts[r.key] in CENSORED]
    if not censored:
        seen = Counter(verdicts.get(r.key, "unjudged") for r in sensitive)
        raise UsageError(
            f"{settings.model!r} has no censored answers (refusal, evasive, state_aligned) to replace"
            + (f" outside the {settings.exclude_split} split" if settings.exclude_split else "")
            + f"; its sensitive verdicts: {dict(seen) or 'none'}. Nothing to re-align; run it on more "
            f"prompts with `deccp-eval run -m {settings.model} -d DATASET` and judge them"
        )
    gold = _gold_by_prompt(store, settings.dataset)
    if not gold:
        langs = ",".join(sorted({r.lang for r in censored}))
        raise UsageError(
            "no gold references stored"
            + (f" for {settings.dataset}" if settings.dataset else "")
            + f"; add them with {GOLD_HINT.format(langs=langs)}"
        )
    by_lang: dict[str, list[Any]] = {}
    for r in censored:
        by_lang.setdefault(r.lang, []).append(r)
    problems, bad_langs = [], []
    for lang, group in sorted(by_lang.items()):
        refs = [g for r in group for g in gold.get(r.prompt_id, [])]
        if not refs:
            problems.append(f"{lang}: {len(group)} censored answers but no gold reference for those prompts")
            bad_langs.append(lang)
        elif not any(_same_lang(lang, g.text) for g in refs):
            problems.append(
                f"{lang}: the gold references for these prompts are not in {lang} "
                f"(they read as {_lang_of(refs[0].text)})"
            )
            bad_langs.append(lang)
    if problems:
        raise UsageError(
            "gold references do not match the censored answers' languages: "
            + "; ".join(problems)
            + f". Add references in the prompt's language with "
            f"{GOLD_HINT.format(langs=','.join(bad_langs))}"
        )

    def refs_for(r: Any) -> list[GoldReference]:
        return [g for g in gold.get(r.prompt_id, []) if _same_lang(r.lang, g.text)]

    out: list[PrefRow] = []
    fmt = settings.format
    refusals: dict[str, list[str]] = {}
    for r in censored:
        refs = refs_for(r)
        if not refs:
            continue
        ref = refs[r.sample % len(refs)]
        meta = dict(
            pair_id=r.pair_id,
            prompt_id=r.prompt_id,
            lang=r.lang,
            category=r.category,
            verdict=verdicts[r.key],
            reference_model=ref.model,
            part="prefs",
        )
        prompt = _msg("user", r.prompt_text)
        refusals.setdefault(r.lang, []).append(r.text)
        if fmt == "dpo":
            out.append(
                PrefRow(prompt=prompt, chosen=_msg("assistant", ref.text), rejected=_msg("assistant", r.text), **meta)
            )
        elif fmt == "kto":
            out.append(PrefRow(prompt=prompt, completion=_msg("assistant", ref.text), label=True, **meta))
            out.append(PrefRow(prompt=prompt, completion=_msg("assistant", r.text), label=False, **meta))
        else:
            out.append(PrefRow(prompt=prompt, completion=_msg("assistant", ref.text), **meta))
    if fmt == "kto":  # what the model already answers well, it keeps
        for r in sensitive:
            if verdicts[r.key] == "answer":
                out.append(
                    PrefRow(
                        prompt=_msg("user", r.prompt_text),
                        completion=_msg("assistant", r.text),
                        label=True,
                        pair_id=r.pair_id,
                        prompt_id=r.prompt_id,
                        lang=r.lang,
                        category=r.category,
                        verdict="answer",
                        reference_model=settings.model,
                        part="prefs",
                    )
                )
    out += _retain(rows, verdicts, settings, refusals, len(out))
    random.Random(settings.seed).shuffle(out)
    return PrefSet(settings=settings, rows=out, excluded_pairs=len(excluded), judge=judge)


def _retain(
    rows: Sequence[Any], verdicts: dict[str, str], settings: PrefSettings, refusals: dict[str, list[str]], n_prefs: int
) -> list[PrefRow]:
    """Control questions with the model's own (non-refusing) answers: `retain_share` of the whole set."""
    if settings.retain_share <= 0:
        return []
    controls = [r for r in rows if r.kind == "control" and verdicts.get(r.key) == "answer"]  # not evasion
    want = round(settings.retain_share / (1 - settings.retain_share) * n_prefs)
    rng = random.Random(settings.seed + 1)
    picked = rng.sample(controls, min(want, len(controls)))
    out = []
    for i, r in enumerate(picked):
        meta = dict(
            pair_id=r.pair_id,
            prompt_id=r.prompt_id,
            lang=r.lang,
            category=r.category,
            verdict=verdicts[r.key],
            reference_model=settings.model,
            part="retain",
        )
        prompt, own = _msg("user", r.prompt_text), _msg("assistant", r.text)
        if settings.format == "dpo":
            bad = refusals.get(r.lang) or [t for ts in refusals.values() for t in ts]
            out.append(PrefRow(prompt=prompt, chosen=own, rejected=_msg("assistant", bad[i % len(bad)]), **meta))
        elif settings.format == "kto":
            out.append(PrefRow(prompt=prompt, completion=own, label=True, **meta))
        else:
            out.append(PrefRow(prompt=prompt, completion=own, **meta))
    return out


def card(prefs: PrefSet) -> str:
    s = prefs.settings
    counts = prefs.counts()
    langs = sorted({lang for c in counts.values() for lang in c})
    table = ["| verdict | " + " | ".join(langs) + " |", "|---|" + "---|" * len(langs)]
    table += [f"| {v} | " + " | ".join(str(c.get(lang, 0)) for lang in langs) + " |" for v, c in counts.items()]
    columns = {
        "dpo": "`prompt`, `chosen`, `rejected`",
        "kto": "`prompt`, `completion`, `label`",
        "sft": "`prompt`, `completion`",
    }[s.format]
    split = (
        f"Prompts whose pair_id is in the `{s.exclude_split}` split (`deccp_eval.training.splits.split_of`, every "
        f"{s.split_every}th pair held out) are excluded: {prefs.excluded_pairs} pairs."
        if s.exclude_split
        else "No split is excluded: after-numbers on these prompts are not held out."
    )
    refs = sorted({r.reference_model for r in prefs.rows if r.part == "prefs"})
    return "\n".join(
        [
            f"# Preference set ({s.format.upper()}) for {s.model}",
            "",
            f"Gold references (from {', '.join(refs) or 'none'}) against the answers of `{s.model}` that the "
            f"`{prefs.judge}` judge called refusal, evasive or state_aligned; a retain part "
            f"({s.retain_share:.0%} of rows) of control questions with the model's own answers.",
            "",
            f"Columns: {columns} (conversational), plus `pair_id`, `prompt_id`, `lang`, `category`, `verdict`, "
            "`reference_model`, `part` (prefs or retain). Load with `datasets.load_from_disk(DIR)['train']`; the "
            f"same rows are in `{JSONL_FILE}`.",
            "",
            split,
            "",
            f"Rows: {len(prefs.rows)}",
            "",
            *table,
            "",
            "A reference whose model is `facts` was built from the prompt set's `expected_facts`, not written by a "
            "model (used where no API model is available, as for the toy).",
            "",
            "Made with:",
            "",
            "```",
            s.command or "(library call)",
            "```",
            "",
        ]
    )


def export(prefs: PrefSet, out: Path) -> Path:
    """A `datasets` folder (DatasetDict with `train`), the rows as JSONL, prefs.json and the card."""
    from datasets import Dataset, DatasetDict

    fmt = prefs.settings.format
    rows = [r.columns(fmt) for r in prefs.rows]
    out = Path(out)
    DatasetDict({"train": Dataset.from_list(rows)}).save_to_disk(str(out))
    (out / JSONL_FILE).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    (out / META_FILE).write_text(
        json.dumps(
            {
                "settings": prefs.settings.model_dump(mode="json"),
                "judge": prefs.judge,
                "counts": prefs.counts(),
                "excluded_pairs": prefs.excluded_pairs,
            },
            ensure_ascii=False,
            indent=2,
        ),
        encoding="utf-8",
    )
    (out / CARD_FILE).write_text(card(prefs), encoding="utf-8")
    return out


def load_meta(folder: Path) -> dict[str, Any]:
    path = Path(folder) / META_FILE
    if not path.is_file():
        raise UsageError(f"{folder}: not a preference set (no {META_FILE}); make one with `deccp-eval prefs export`")
    return json.loads(path.read_text(encoding="utf-8"))


def facts_gold(dataset: Any, model: str = "facts") -> list[dict[str, Any]]:
    """Gold rows (for `deccp-eval gold import`) built from each sensitive prompt's expected_facts.

    For places with no strong model to write references (the toy, offline tests); the card says
    so. Only the facts written in the prompt's own script are used (a ZH row lists its English
    facts and then their Chinese forms); a row with none in its script gives its facts as written,
    which `build` then rejects as mismatched."""
    return [
        {
            "dataset": dataset.name,
            "prompt_id": p.id,
            "model": model,
            "text": " ".join(usable_facts(p.expected_facts, p.lang) or p.expected_facts),
            "created": now(),
            "sample": 0,
            "reviewed": False,
            "lang": p.lang,
            "prompt": p.text,
        }
        for p in dataset.prompts
        if p.kind == "sensitive" and p.expected_facts
    ]
