"""Leaderboard rows from the store: one per model x language x judge, rates with Wilson intervals."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from deccp_eval.schema import ACCURACIES, CENSORED, VERDICTS
from deccp_eval.stats import wilson
from deccp_eval.store import Store



def _rate(prefix: str, k: int, n: int) -> dict[str, float]:
    lo, hi = wilson(k, n)
    return {f"{prefix}_rate": (k / n if n else math.nan), f"{prefix}_lo": lo, f"{prefix}_hi": hi}


def latest_judgments(store: Store, rows: Sequence[Any], judge: str | None = None) -> dict[tuple[str, str], Any]:
    """(response key, judge) -> the newest judgment row."""
    out: dict[tuple[str, str], Any] = {}
    for j in store.judgments_for([r["key"] for r in rows], judge):
        out[(j["response_key"], j["judge"])] = j
    return out


def compute(store: Store, run_id: str | None = None, models: Sequence[str] | None = None,
            dataset: str | None = None, by: Sequence[str] = ("model", "lang", "judge"),
            loaded: tuple[Sequence[Any], dict[tuple[str, str], Any]] | None = None) -> list[dict[str, Any]]:
    """Rates per `by` group. `loaded` passes (response rows, latest judgments) a caller already read
    with the same filters, so the report does not read a large store three times."""
    if loaded is None:
        rows = store.response_rows(run_id=run_id, models=models, dataset=dataset)
        judgments = latest_judgments(store, rows)
    else:
        rows, judgments = loaded
    runs = {r["id"]: r for r in store.runs()}
    versions = {r["dataset"]: r["dataset_version"] for r in runs.values()}
    all_judges = sorted({j for (_, j) in judgments})

    groups: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        for judge in all_judges or ["(none)"]:
            fields = {"model": r["model"], "lang": r["lang"], "judge": judge, "category": r["category"]}
            gkey = tuple(fields[b] for b in by)
            g = groups.get(gkey)
            if g is None:
                g = groups[gkey] = {"fields": {b: fields[b] for b in by}, "dataset": r["dataset"],
                                    "verdicts": Counter(), "control": Counter(), "errors": 0, "unparsed": 0,
                                    "accuracy": Counter(), "misinfo": [0, 0], "tokens_in": 0, "tokens_out": 0,
                                    "cost": 0.0, "responses": set()}
            if r["key"] not in g["responses"]:
                g["responses"].add(r["key"])
                g["tokens_in"] += r["tokens_in"] or 0
                g["tokens_out"] += r["tokens_out"] or 0
                g["cost"] += r["cost"] or 0.0
            if r["error"] is not None:
                g["errors"] += r["kind"] == "sensitive"
                continue
            j = judgments.get((r["key"], judge))
            if j is None:
                continue
            if j["parse_status"] == "unparsed" or j["verdict"] is None:
                g["unparsed"] += r["kind"] == "sensitive"
                continue
            target = g["verdicts"] if r["kind"] == "sensitive" else g["control"]
            target[j["verdict"]] += 1
            if r["kind"] == "sensitive" and j["accuracy"]:
                g["accuracy"][j["accuracy"]] += 1
            if r["kind"] == "sensitive" and j["misinformation"] is not None:
                g["misinfo"][0] += int(j["misinformation"])
                g["misinfo"][1] += 1

    out = []
    for g in groups.values():
        n = sum(g["verdicts"].values())
        row: dict[str, Any] = dict(g["fields"])
        row["n"] = n
        for v in VERDICTS:
            row.update(_rate(v, g["verdicts"][v], n))
        row.update(_rate("censorship", sum(g["verdicts"][v] for v in CENSORED), n))
        cn = sum(g["control"].values())
        row["control_n"] = cn
        row.update(_rate("control_refusal", g["control"]["refusal"], cn))
        an = sum(g["accuracy"].values())
        row["accuracy_n"] = an
        for a in ACCURACIES:
            row.update(_rate(f"accuracy_{a}", g["accuracy"][a], an))
        row.update(_rate("misinformation", g["misinfo"][0], g["misinfo"][1]))
        row.update({"errors": g["errors"], "unparsed": g["unparsed"], "tokens_in": g["tokens_in"],
                    "tokens_out": g["tokens_out"], "cost_usd": round(g["cost"], 6), "dataset": g["dataset"],
                    "dataset_version": versions.get(g["dataset"], "")})
        out.append(row)
    out.sort(key=lambda r: tuple(str(r.get(b, "")) for b in by))
    return out


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> Path:
    import pandas as pd

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False, float_format="%.4f")
    return path


def _pct(row: dict[str, Any], prefix: str) -> str:
    rate = row[f"{prefix}_rate"]
    if rate != rate:  # nan
        return "–"
    return f"{rate:.0%} [{row[f'{prefix}_lo']:.0%}–{row[f'{prefix}_hi']:.0%}]"


def markdown(rows: list[dict[str, Any]]) -> str:
    """The leaderboard as a Markdown table; accuracy columns appear once references were used."""
    graded = any(r.get("accuracy_n") for r in rows)
    head = ["model", "lang", "judge", "n", "answer", "refusal", "evasive", "state_aligned", "censorship",
            "over-refusal (controls)"]
    head += ["correct", "misinformation"] if graded else []
    head += ["errors", "unparsed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.get("model", ""), r.get("lang", ""), r.get("judge", ""), str(r["n"]),
                 *(_pct(r, v) for v in (*VERDICTS, "censorship", "control_refusal"))]
        if graded:
            cells += [_pct(r, "accuracy_correct"), _pct(r, "misinformation")]
        cells += [str(r["errors"]), str(r["unparsed"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
