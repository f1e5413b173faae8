"""`deccp-eval publish`: a folder ready to upload as a Hugging Face dataset or attach to a paper.

    leaderboard.csv / .parquet               overall rates (model x language x judge)
    leaderboard_by_category.csv / .parquet   the same per category
    answers.parquet                          one row per answer and judge, with its provenance
    report/index.html (+ PNGs)               the self-contained report
    README.md                                dataset card: YAML header, provenance, licence

Every answers row carries its own provenance (run id and recorded command, model fingerprint when
the run stored one, dataset and version, judge id and template hash, deccp-eval version), so a row
copied out of the file still says where it came from. pandas/pyarrow load inside `publish`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deccp_eval import __version__
from deccp_eval.analysis import leaderboard
from deccp_eval.analysis.report.write import write_report
from deccp_eval.datasets import builtin as prompts
from deccp_eval.store.db import Store
from deccp_eval.store.rows import ResponseRow, RunRow

ANSWER_COLUMNS = (
    "model",
    "model_fingerprint",
    "run_id",
    "command",
    "dataset",
    "dataset_version",
    "prompt_id",
    "pair_id",
    "lang",
    "category",
    "kind",
    "prompt",
    "sample",
    "answer",
    "reasoning",
    "error",
    "finish_reason",
    "judge",
    "judge_template_hash",
    "verdict",
    "parse_status",
    "confidence",
    "decided_by",
    "accuracy",
    "misinformation",
    "rationale",
    "deccp_eval_version",
)


@dataclass
class Published:
    """What was written, for the command to print and tests to check."""

    out: Path
    files: list[Path] = field(default_factory=list)
    answers: int = 0
    rows: int = 0


def dataset_license(name: str) -> str:
    """The licence of a prompt set we ship; other sets' licences are on their own cards."""
    if name in (prompts.BUILTIN_NAME, "deccp-harmless"):
        return prompts.LICENSE
    return "unknown"


def _fingerprint(row: ResponseRow, run: RunRow) -> str | None:
    """The answer's own fingerprint (stored with it), else the one its run recorded for the model."""
    if row.fingerprint:
        return row.fingerprint
    return run.fingerprints.get(row.model) or run.config.get("fingerprints", {}).get(row.model) or None


def answer_rows(store: Store, run_id: str | None = None) -> tuple[list[dict[str, Any]], dict[str, RunRow]]:
    """One dict per (answer, judge) (an unjudged answer gets one row with no judge), and the runs used."""
    rows = store.response_rows(run_id=run_id, required=True)
    runs = {r.id: r for r in store.runs()}
    judgments = leaderboard.latest_judgments(store, rows)
    by_key: dict[str, list[Any]] = {}
    for (key, _), j in sorted(judgments.items()):
        by_key.setdefault(key, []).append(j)
    out: list[dict[str, Any]] = []
    used: dict[str, Any] = {}
    for r in rows:
        rid = run_id or r.run_id
        assert rid is not None  # rows read by run carry their run id
        run = runs[rid]
        used[rid] = run
        base = {
            "model": r.model,
            "model_fingerprint": _fingerprint(r, run),
            "run_id": rid,
            "command": run.config.get("command"),
            "dataset": r.dataset,
            "dataset_version": run.dataset_version,
            "prompt_id": r.prompt_id,
            "pair_id": r.pair_id,
            "lang": r.lang,
            "category": r.category,
            "kind": r.kind,
            "prompt": r.prompt_text,
            "sample": r.sample,
            "answer": r.text,
            "reasoning": r.reasoning,
            "error": r.error,
            "finish_reason": r.finish_reason,
            "deccp_eval_version": __version__,
        }
        for j in by_key.get(r.key) or [None]:
            row = dict(base)
            row.update(
                judge=None,
                judge_template_hash=None,
                verdict=None,
                parse_status=None,
                confidence=None,
                decided_by=None,
                accuracy=None,
                misinformation=None,
                rationale=None,
            )
            if j is not None:
                row.update(
                    judge=j.judge,
                    judge_template_hash=j.template_hash,
                    verdict=j.verdict,
                    parse_status=j.parse_status,
                    confidence=j.confidence,
                    decided_by=j.decided_by,
                    accuracy=j.accuracy,
                    misinformation=j.misinformation,
                    rationale=j.rationale,
                )
            out.append(row)
    return out, used


def publish(store: Store, out: Path, run_id: str | None = None, title: str = "deccp-eval results") -> Published:
    """Write the bundle into `out` (created; files already there with these names are replaced)."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    result = Published(out)
    answers, runs = answer_rows(store, run_id)
    frame = pd.DataFrame(answers, columns=list(ANSWER_COLUMNS))
    frame["confidence"] = frame["confidence"].astype("float64")
    frame["misinformation"] = frame["misinformation"].astype("boolean")
    path = out / "answers.parquet"
    frame.to_parquet(path, index=False)
    result.files.append(path)
    result.rows = len(frame)
    result.answers = len(frame.drop_duplicates(["run_id", "model", "dataset", "prompt_id", "sample"]))
    boards = dict(zip(("leaderboard", "leaderboard_by_category"), leaderboard.tables(store, run_id=run_id)))
    for name, rows in boards.items():
        result.files.append(leaderboard.write_csv(rows, out / f"{name}.csv"))
        pd.DataFrame(rows).to_parquet(out / f"{name}.parquet", index=False)
        result.files.append(out / f"{name}.parquet")
    files = write_report(store, out / "report", run_id=run_id, plots_dir=out / "report", source="answers.parquet")
    result.files += [files.index, *files.plots]
    card = out / "README.md"
    card.write_text(dataset_card(title, frame, runs, boards["leaderboard"]), encoding="utf-8")
    result.files.append(card)
    return result


def _yaml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i, ensure_ascii=False) for i in items) + "]"


def dataset_card(title: str, frame: Any, runs: dict[str, RunRow], board: list[dict[str, Any]]) -> str:
    """README.md with the Hugging Face dataset YAML header, then provenance tables."""
    datasets = sorted({(r.dataset, r.dataset_version) for r in runs.values()})
    licenses = sorted({dataset_license(name) for name, _ in datasets})
    license_id = licenses[0].lower() if len(licenses) == 1 and licenses[0] != "unknown" else "other"
    langs = sorted({lang.split("-")[0] for lang in frame["lang"].unique()})
    n = len(frame)
    size = "n<1K" if n < 1_000 else "1K<n<10K" if n < 10_000 else "10K<n<100K" if n < 100_000 else "100K<n<1M"
    lines = [
        "---",
        f"license: {license_id}",
        f"language: {_yaml_list(langs)}",
        f"pretty_name: {json.dumps(title)}",
        "tags: [llm-evaluation, censorship, llm-as-a-judge, deccp-eval]",
        f"size_categories: [{size}]",
        "configs:",
        "- config_name: answers",
        "  data_files: answers.parquet",
        "  default: true",
        "- config_name: leaderboard",
        "  data_files: leaderboard.parquet",
        "- config_name: leaderboard_by_category",
        "  data_files: leaderboard_by_category.parquet",
        "---",
        "",
        f"# {title}",
        "",
        f"Made with deccp-eval {__version__} (`deccp-eval publish`): how "
        f"{frame['model'].nunique()} models answer politically sensitive questions about China, judged by "
        f"{', '.join(sorted(frame['judge'].dropna().unique())) or 'no judge'}. "
        "`report/index.html` shows every answer in a browser (no network needed).",
        "",
        "| file | what it holds |",
        "|---|---|",
        f"| `answers.parquet` | {n} rows: one per answer and judge, each with its provenance columns |",
        f"| `leaderboard.csv`, `.parquet` | {len(board)} rows: rates per model, language and judge, "
        "95% Wilson intervals |",
        "| `leaderboard_by_category.csv`, `.parquet` | the same per category |",
        "| `report/index.html` | the self-contained report, with plots |",
        "",
        "## Provenance",
        "",
        "Every row of `answers.parquet` names its run (`run_id`, `command`), its model (`model`, "
        "`model_fingerprint` when the run recorded one), its prompt set (`dataset`, `dataset_version`), "
        "its judge (`judge`, `judge_template_hash`) and `deccp_eval_version`.",
        "",
        "### Runs",
        "",
        "| run | created | dataset | models | command |",
        "|---|---|---|---|---|",
    ]
    for rid, run in sorted(runs.items(), key=lambda kv: kv[1].created):
        command = run.config.get("command") or "(not recorded)"
        lines.append(
            f"| {_cell(rid)} | {_cell(run.created)} | {_cell(run.dataset)} {_cell(run.dataset_version)} "
            f"| {len(run.models)} | `{_cell(command)}` |"
        )
    lines += ["", "### Models", "", "| model | fingerprint | answers |", "|---|---|---|"]
    per_model = frame.drop_duplicates(["run_id", "model", "dataset", "prompt_id", "sample"]).groupby("model")
    for model, group in per_model:
        prints = sorted(set(group["model_fingerprint"].dropna()))
        lines.append(f"| {_cell(model)} | {_cell(', '.join(prints) or '(not recorded)')} | {len(group)} |")
    lines += ["", "### Judges", "", "| judge | template hash | judgments |", "|---|---|---|"]
    judged = frame.dropna(subset=["judge"]).groupby(["judge", "judge_template_hash"]).size()
    for (judge, template), count in judged.items():
        lines.append(f"| {_cell(judge)} | {_cell(template) or '(none)'} | {count} |")
    lines += ["", "### Prompt sets and licence", "", "| dataset | version | licence |", "|---|---|---|"]
    for name, version in datasets:
        license_name = dataset_license(name)
        lines.append(
            f"| {_cell(name)} | {_cell(version)} | "
            f"{license_name if license_name != 'unknown' else 'see the source dataset card'} |"
        )
    lines += [
        "",
        "Model answers are reproduced for research on model behaviour; each model's own terms apply to its outputs.",
        "",
    ]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    """A Markdown table cell: one line, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")
