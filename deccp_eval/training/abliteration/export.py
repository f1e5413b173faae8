"""What an abliterated folder carries: weights (safetensors), tokenizer and chat template, the
direction file, `abliteration.json` (validated by `AbliterationRecord`) and a model card with
the same measured numbers, so a published model states how it was made and what it does."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from deccp_eval import __version__
from deccp_eval.training.abliteration.apply import AbliterationParams
from deccp_eval.training.abliteration.direction import DIRECTION_FILE
from deccp_eval.training.abliteration.score import Score

RECORD_FILE = "abliteration.json"


class PromptSource(BaseModel):
    """A prompt set that made the direction; `n` counts the prompts used (held-out pairs excluded)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str
    version: str
    kinds: list[str]
    n: int


class EvalSettings(BaseModel):
    """How the reported (test-split) numbers were measured."""

    model_config = ConfigDict(extra="forbid")

    judge: str
    max_tokens: int
    n_sensitive: int = Field(description="test-split sensitive prompts")
    n_harmless: int = Field(description="test-split harmless prompts (KL, over-refusal)")
    n_selection: int = Field(default=0, description="selection-split sensitive prompts that scored the trials")
    source: str = ""
    langs: list[str] = Field(default_factory=list)


class SearchRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    study: str
    storage: str
    trials: int
    chosen_trial: int
    why: str
    max_kl: float
    max_censorship: float = 0.1
    seed: int


class AbliterationRecord(BaseModel):
    """`abliteration.json`: how the folder was made and its before/after numbers."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = 2
    base_model: str
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    tool: str = f"deccp-eval {__version__}"
    direction_layer: float
    direction_file: str = DIRECTION_FILE
    params: AbliterationParams
    layer_weights: list[float]
    edited: list[str]
    untied_lm_head: bool = False
    harmful: list[PromptSource]
    harmless: list[PromptSource]
    eval: EvalSettings
    before: Score = Field(description="the original model on the test split")
    after: Score = Field(description="the edited model on the test split: the reported result")
    selection: Score | None = Field(
        default=None,
        description="the chosen trial on the selection split: best of N, optimistic, never the reported result",
    )
    search: SearchRecord | None = None
    source_gguf: str | None = Field(default=None, description="the GGUF file the base was loaded from (dequantized)")
    export_gguf: str | None = Field(default=None, description="type of the model.gguf written beside the safetensors")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _rates_rows(record: AbliterationRecord) -> list[str]:
    rows = [
        "| | answer | refusal | evasive | state_aligned | censorship | content | over-refusal | first-token KL |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    shown = [("before (test split)", record.before), ("after (test split)", record.after)]
    if record.selection is not None and record.search is not None:
        shown.append(
            (f"chosen trial on the selection split (best of {record.search.trials}, optimistic)", record.selection)
        )
    for label, s in shown:
        r = s.rates
        rows.append(
            f"| {label} | {r.answer:.3f} | {r.refusal:.3f} | {r.evasive:.3f} | {r.state_aligned:.3f} | "
            f"{s.censorship:.3f} | {s.content:.3f} | {_pct(s.over_refusal)} | {s.kl:.4f} |"
        )
    return rows


def _lang_rows(record: AbliterationRecord) -> list[str]:
    rows = ["| language | n | censorship before | after | content before | after |", "|---|---:|---:|---:|---:|---:|"]
    for lang, after in record.after.langs.items():
        before = record.before.langs.get(lang)
        rows.append(
            f"| {lang} | {after.n} | {_pct(before.censorship if before else None)} | {after.censorship:.3f} | "
            f"{_pct(before.content if before else None)} | {_pct(after.content)} |"
        )
    return rows


def model_card(record: AbliterationRecord) -> str:
    """README.md for the folder: the recipe and the measured numbers, nothing that was not measured."""
    p = record.params
    k = p.kernel
    ev = record.eval
    sources = ", ".join(f"{s.dataset} {s.version} ({'/'.join(s.kinds)}, {s.n})" for s in record.harmful)
    harmless = ", ".join(f"{s.dataset} {s.version} ({'/'.join(s.kinds)}, {s.n})" for s in record.harmless)
    lines = [
        "---",
        f"base_model: {record.base_model}",
        "tags: [abliterated, deccp-eval]",
        "---",
        "",
        f"# Abliterated {record.base_model}",
        "",
        f"Made with `{record.tool}` (`deccp-eval abliterate`): the refusal direction (mean residual at the last "
        "prompt token, sensitive minus harmless prompts) was projected out of every matrix that writes the "
        "residual stream, with a per-layer weight.",
        "",
        "## Measured with the deccp-eval harness (test split)",
        "",
        f"{ev.n_sensitive} sensitive prompts of the test split ({ev.source or 'held-out pairs'}; "
        f"{', '.join(ev.langs) or 'all languages'}), split by pair_id from the prompts that made the direction "
        f"and the {ev.n_selection} that chose the trial; greedy, {ev.max_tokens} new tokens, judge `{ev.judge}`. "
        f"First-token KL against the original model and over-refusal on {ev.n_harmless} harmless test prompts.",
        "",
        *_rates_rows(record),
        "",
        *_lang_rows(record),
        "",
        "Censorship is refusal + evasive + state_aligned; an answer that states none of the prompt's expected "
        "facts counts as evasive (content-free). Content is the share of sensitive replies that state an expected "
        "fact in the reply's language. A model that stops refusing may give the state line instead: read the "
        "state_aligned column, not only refusal. The selection row is the best of the search's trials on the "
        "prompts that chose it, so it is optimistic; the test rows are the result.",
        "",
        "## Recipe",
        "",
        f"- direction: position {record.direction_layer:.2f} (0 = embeddings, i + 1 = output of layer i)"
        f"{', orthogonal to the harmless mean' if p.project_harmless else ''}; file `{record.direction_file}`",
        f"- harmful prompts: {sources}",
        f"- harmless prompts: {harmless}",
        f"- kernel: peak {k.peak:.2f}, max weight {k.max_weight:.3f}, min weight {k.min_weight:.3f}, "
        f"width {k.width:.2f}; layer weights {', '.join(f'{w:.2f}' for w in record.layer_weights)}",
        f"- edited: every residual writer (attention and MLP outputs, every routed and shared expert) of each "
        f"weighted layer{', input embeddings' if p.embeddings else ''}"
        f"{'; norm-preserving' if p.norm_preserve else ''}"
        f"{'; lm_head untied from the embeddings and left unchanged' if record.untied_lm_head else ''}",
    ]
    if record.search:
        s = record.search
        lines.append(
            f"- chosen: trial {s.chosen_trial} of {s.trials} in Optuna study `{s.study}` ({s.why}; seed {s.seed})"
        )
    lines += gguf_lines(record.source_gguf, record.export_gguf)
    lines += ["", f"See `{RECORD_FILE}` for every number in machine-readable form.", ""]
    return "\n".join(lines)


def gguf_lines(source: str | None, export: str | None) -> list[str]:
    """The card's word on the file format: a GGUF base is dequantized; the folder is safetensors."""
    if not source:
        return []
    lines = [
        f"- weights: a normal safetensors folder, the base `{source}` (GGUF) dequantized and edited; "
        "load it with `hf:FOLDER`"
    ]
    if export:
        lines.append(
            f"- `model.gguf`: the same edited weights as GGUF {export} (metadata, tokenizer and chat "
            "template from the base file), for llama.cpp, Ollama or `hf:FOLDER/model.gguf`"
        )
    return lines


def save_folder(model: Any, tokenizer: Any, out: str | Path, record: AbliterationRecord) -> Path:
    """Write weights as safetensors, the tokenizer (with its chat template), the record and the card."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, str) and not (out / "chat_template.jinja").exists():
        (out / "chat_template.jinja").write_text(template, encoding="utf-8")
    (out / RECORD_FILE).write_text(record.model_dump_json(indent=2), encoding="utf-8")
    (out / "README.md").write_text(model_card(record), encoding="utf-8")
    return out


def load_record(folder: str | Path) -> AbliterationRecord:
    return AbliterationRecord.model_validate(json.loads((Path(folder) / RECORD_FILE).read_text(encoding="utf-8")))
