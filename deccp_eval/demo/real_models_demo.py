"""The demo's real-models part: SpeechMap's public answers of 37 models (the odd-numbered China questions
shipped in data/speechmap/), imported, judged by the default judge, and measured: censorship per language,
the paired language gap, thought suppression, and agreement with SpeechMap's own verdicts.

Its own store (`results/real_models.db`), so the toy's leaderboard stays the toy's. Everything is cached:
a second demo imports nothing and judges nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deccp_eval.analysis import language_gap, leaderboard
from deccp_eval.analysis.report.data import source_agreement
from deccp_eval.analysis.report.write import write_report
from deccp_eval.backends.fingerprint import file_sha256
from deccp_eval.base.schema import DEFAULT_JUDGE
from deccp_eval.importers import import_file
from deccp_eval.judging.contract import make_judge
from deccp_eval.run import runner
from deccp_eval.store.db import Store

DEV_FILE = Path(__file__).resolve().parents[2] / "data" / "speechmap" / "speechmap_china_dev.jsonl"
SOURCE_JUDGE = "speechmap:x-ai/grok-4.1-fast"  # SpeechMap's current judge (data/speechmap/README.md)


def training_note(judge: Any, data_sha: str, data_name: str) -> tuple[bool, str | None]:
    """(the judge was trained on this file, its grouped cross-validated figure) from what the judge says
    about its training: a `training` attribute or, for `clf:PATH`, the `PATH.json` beside the model, with
    `sources` (file names or sha256s it was trained on) and `grouped_cv` (a dict or a line of text)."""
    meta = getattr(judge, "training", None)
    path = getattr(judge, "path", None)
    if meta is None and isinstance(path, Path) and path.with_name(path.name + ".json").is_file():
        meta = json.loads(path.with_name(path.name + ".json").read_text(encoding="utf-8"))
    if not isinstance(meta, dict):
        return False, None
    sources = [str(s) for s in meta.get("sources") or meta.get("trained_on") or []]
    fit = any(s in (data_sha, data_name) or data_sha.startswith(s) for s in sources)
    cv = meta.get("grouped_cv")
    if isinstance(cv, dict):
        cv = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in cv.items())
    return fit, (str(cv) if cv else None)


def run(
    out_dir: Path,
    say: Callable[[str], None],
    judge_spec: str = DEFAULT_JUDGE,
    report: bool = True,
    command: str | None = None,
) -> int:
    """Import, judge, write `out_dir/real_models/` (leaderboard.csv, language_gap.csv, agreement.csv, the
    report); print the tables. 0 when done, 1 when the dev file is missing. `command` is recorded with
    the import's run."""
    if not DEV_FILE.is_file():
        say(f"  skipped: {DEV_FILE} is not here (it ships with the repository, not the package)")
        return 1
    folder = out_dir / "real_models"
    folder.mkdir(parents=True, exist_ok=True)
    judge = make_judge(judge_spec)
    with Store(out_dir / "real_models.db") as store:
        t = import_file(store, DEV_FILE, "speechmap", command=command)
        say(
            f"  {DEV_FILE.name}: {t.answers} answers of {len(t.models)} models ({t.new_answers} new), "
            f"SpeechMap's verdicts as {', '.join(t.judges)}"
        )
        rows = store.response_rows(dataset="speechmap-china")
        tally = runner.judge_rows(store, rows, judge)
        say(f"  judge {judge.id}: {tally.judged} judged, {tally.cached} from cache")
        judgments = leaderboard.latest_judgments(store, rows)
        board = [
            r
            for r in leaderboard.compute(store, dataset="speechmap-china", loaded=(rows, judgments))
            if r["judge"] == judge.id
        ]
        leaderboard.write_csv(board, folder / "leaderboard.csv")
        gaps = [g for g in language_gap.compute(store, rows, judgments) if g.judge == judge.id]
        language_gap.write_csv(gaps, folder / "language_gap.csv")
        agreement = source_agreement(rows, judgments, judge.id)
        _write_agreement(agreement, folder / "agreement.csv")
        if report:
            index = write_report(
                store, folder / "report", judge=judge.id, plots_dir=folder, source="real_models.db"
            ).index
    for line in summary(board, gaps, agreement, judge, file_sha256(DEV_FILE)):
        say(line)
    if report:
        say(f"  report: {index}")
    return 0


def summary(
    board: list[dict[str, Any]], gaps: list[Any], agreement: list[dict[str, Any]], judge: Any, data_sha: str
) -> list[str]:
    """The real-models tables in Markdown: censorship EN/ZH, gap, suppression, kappa."""
    by_model: dict[str, dict[str, dict[str, Any]]] = {}
    for r in board:
        by_model.setdefault(r["model"], {})[r["lang"]] = r
    gap_of = {g.model: g for g in gaps}
    kappa = {a["model"]: a for a in agreement if a["source"] == SOURCE_JUDGE}
    fit, cv = training_note(judge, data_sha, DEV_FILE.name)
    kappa_head = "kappa vs SpeechMap (training fit)" if fit else "kappa vs SpeechMap"
    lines = [
        "",
        f"Real models (public answers): SpeechMap China, 25 odd-numbered question pairs, judge {judge.id}",
        "",
        f"| model | censored EN | censored ZH | gap ZH − EN | McNemar p | reasoning | suppressed | {kappa_head} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model in sorted(by_model, key=lambda m: -(gap_of[m].gap if m in gap_of else -9)):
        en, zh = by_model[model].get("en"), by_model[model].get("zh")
        g = gap_of.get(model)
        reasons = any(r.get("reasons") for r in (en, zh) if r)
        suppressed = "/".join(_pct(r.get("suppressed_rate")) for r in (en, zh) if r) if reasons else "–"
        reasoning = "/".join(_pct(r.get("reasoning_rate")) for r in (en, zh) if r)
        k = kappa.get(model)
        kap = f"{k['kappa']:.2f}" if k and k["kappa"] == k["kappa"] else "–"
        lines.append(
            f"| {model} | {_pct(en and en['censorship_rate'])} | {_pct(zh and zh['censorship_rate'])} | "
            f"{f'{g.gap:+.0%} [{g.gap_lo:+.0%}, {g.gap_hi:+.0%}]' if g else '–'} | "
            f"{f'{g.mcnemar_p:.3f}' if g else '–'} | {reasoning} | {suppressed} | "
            f"{kap} |"
        )
    overall = kappa.get("(all models)")
    lines.append("")
    if overall:
        note = (
            f"training fit: {judge.id} was trained on these answers; grouped cross-validated: {cv or 'not recorded'}"
            if fit
            else "the judge was not trained on these answers"
        )
        lines.append(
            f"Agreement with SpeechMap's judge ({SOURCE_JUDGE}, 3 classes): kappa {overall['kappa']:.3f} "
            f"over {overall['n']} answers ({note})."
        )
    top = sorted((g for g in gaps if g.gap == g.gap), key=lambda g: -g.gap)[:5]
    lines.append("Largest gaps ZH − EN: " + "; ".join(f"{g.model} {g.gap:+.0%} (p={g.mcnemar_p:.3f})" for g in top))
    reasoners = [r for r in board if r.get("reasons")]
    if reasoners:
        lines.append(
            "Thought suppression (censored answers with no reasoning), models that show reasoning: "
            + "; ".join(
                f"{r['model']} {r['lang']} {_pct(r['suppressed_rate'])} of {r['suppressed_n']}" for r in reasoners
            )
        )
    lines.append(
        "Reasoning here is what SpeechMap kept in the message content (inline <think> blocks); the copy in "
        "data/speechmap/ does not carry its separate reasoning field, so models whose reasoning came "
        "apart (DeepSeek-R1) show none and get no suppressed rate."
    )
    return lines


def _pct(value: Any) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.0%}"


def _write_agreement(rows: list[dict[str, Any]], path: Path) -> None:
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["source", "model", "n", "kappa", "agreement"])
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
