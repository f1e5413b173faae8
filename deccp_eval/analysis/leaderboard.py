"""Leaderboard rows from the store: one per model fingerprint x dataset version x language x judge,
over every stored answer (not the latest run alone), rates with Wilson intervals.

Degenerate replies (`deccp_eval.base.degenerate`: loops, echoes, broken text, empty replies) are their
own column, the share of sensitive replies flagged, and are never an `answer`: where a judge said
`answer` to one, that verdict is not counted as answer (nor as censored); a censored verdict on a
degenerate reply (a refusal that then loops) stays censored. So `answer + censorship +
degenerate_answer = 1`, and a broken model never looks open."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from deccp_eval.base.degenerate import degenerate
from deccp_eval.base.schema import ACCURACIES, CENSORED, VERDICTS
from deccp_eval.base.stats import wilson
from deccp_eval.judging.facts import states_a_fact
from deccp_eval.store.db import LEGACY_FINGERPRINT, Store, latest_judgments
from deccp_eval.store.rows import JudgmentRow, ResponseRow


def _rate(prefix: str, k: int, n: int) -> dict[str, float]:
    lo, hi = wilson(k, n)
    return {f"{prefix}_rate": (k / n if n else math.nan), f"{prefix}_lo": lo, f"{prefix}_hi": hi}


IDENTITY = ("model", "model_fingerprint", "dataset", "dataset_version")
# A model "reasons" when at least this share of its uncensored answers and control answers (per judge,
# over every language) carry reasoning: only then does an empty reasoning on a censored answer mean
# the model skipped it, rather than that the backend never returns reasoning.
REASONS_AT = 0.5


def degenerate_reason(row: ResponseRow) -> str | None:
    """A stored response row's degenerate reason (None: fine, or an error). A store checks its rows when
    it opens (`Store.recheck_degenerate`); a row still without a reason (a read-only copy of an old store)
    is checked here, once per process (a report reads the rows several times)."""
    if row.error is not None:
        return None
    stored = row.degenerate
    if stored is None:
        memo = (row.key, row.finish_reason, len(row.text or ""))
        stored = _CHECKED.get(memo)
        if stored is None:
            if len(_CHECKED) >= _CHECKED_MAX:
                _CHECKED.clear()
            stored = _CHECKED[memo] = degenerate(row.prompt_text or "", row.text or "", row.finish_reason) or ""
    return stored or None


_CHECKED: dict[tuple[str, str | None, int], str] = {}  # unchecked rows' reasons, by response key
_CHECKED_MAX = 500_000


def _fingerprint(row: ResponseRow) -> str:
    return row.fingerprint or LEGACY_FINGERPRINT


def coverage(store: Store, rows: Sequence[ResponseRow]) -> dict[tuple, tuple[int, int | None]]:
    """(model, fingerprint, dataset, version, lang) -> (prompts with a stored answer, prompts in the
    dataset for that language as its runs recorded it, None when no run recorded it)."""
    covered: dict[tuple, set[str]] = defaultdict(set)
    for r in rows:
        covered[(r.model, _fingerprint(r), r.dataset, r.dataset_version, r.lang)].add(r.prompt_id)
    totals: dict[tuple[str, str], dict[str, int] | None] = {}
    out: dict[tuple, tuple[int, int | None]] = {}
    for key, ids in covered.items():
        ds = (key[2], key[3])
        if ds not in totals:
            totals[ds] = store.dataset_totals(*ds)
        total = (totals[ds] or {}).get(key[4])
        out[key] = (len(ids), total)
    return out


class Tables(NamedTuple):
    """The leaderboard overall (by model, language, judge) and by category too."""

    overall: list[dict[str, Any]]
    by_category: list[dict[str, Any]]


BY_OVERALL = ("model", "lang", "judge")
BY_CATEGORY = ("model", "lang", "judge", "category")
# What a row can be grouped by, in the order of `_Tally.add`'s `fields` tuple.
GROUP_FIELDS = (*IDENTITY, "lang", "judge", "category")

Loaded = tuple[Sequence[ResponseRow], dict[tuple[str, str], JudgmentRow]]


def tables(
    store: Store,
    run_id: str | None = None,
    loaded: Loaded | None = None,
    stated: Sequence[bool | None] | None = None,
) -> Tables:
    """Both leaderboards from one read of the store and one pass over its answers (`leaderboard` and
    `report` write both; on a 100-model store a second read, or a second pass, doubled the command's time).
    `stated`: `facts_matched` of the loaded rows, when the caller matched them already (apart)."""
    if loaded is None:
        rows = store.response_rows(run_id=run_id)
        loaded = (rows, latest_judgments(store, rows))
    overall, by_category = _compute(store, loaded, (BY_OVERALL, BY_CATEGORY), stated)
    return Tables(overall, by_category)


def facts_matched(rows: Sequence[ResponseRow]) -> list[bool | None]:
    """Per row, whether the answer states one of its prompt's facts (`states_a_fact`; None: not
    measurable, or not a sensitive answer): the leaderboards' costliest step, once per distinct reply,
    and needing only the rows, so a caller can run it apart (`base.forked`) while it reads the judgments."""
    memo: dict[tuple, bool | None] = {}
    out: list[bool | None] = []
    for r in rows:
        if r.kind != "sensitive" or r.error is not None:
            out.append(None)
            continue
        key = (r.text, tuple(r.expected_facts), r.lang)
        if key not in memo:
            memo[key] = states_a_fact(r.text or "", r.expected_facts, r.lang)
        out.append(memo[key])
    return out


def compute(
    store: Store,
    run_id: str | None = None,
    models: Sequence[str] | None = None,
    dataset: str | None = None,
    by: Sequence[str] = BY_OVERALL,
    loaded: Loaded | None = None,
) -> list[dict[str, Any]]:
    """Rows per (model, model fingerprint, dataset, dataset version) x `by`, over every stored answer
    of that model on that dataset (the newest per prompt and sample, over all runs), or over one run.
    Two fingerprints of one model name are always two rows; `complete` says whether a row's
    language covers every prompt the dataset has. `loaded` passes (response rows, latest judgments) a
    caller already read with the same filters, so the report does not read a large store three times."""
    if loaded is None:
        rows = store.response_rows(run_id=run_id, models=models, dataset=dataset)
        loaded = (rows, latest_judgments(store, rows))
    return _compute(store, loaded, (by,))[0]


def _new_group(fields: dict[str, Any], identity: tuple, judge: str) -> dict[str, Any]:
    return {
        "fields": fields,
        "identity": identity,
        "judge": judge,
        "langs": set(),
        "verdicts": Counter(),
        "control": Counter(),
        "errors": 0,
        "unparsed": 0,
        "accuracy": Counter(),
        "misinfo": [0, 0],
        "facts": [0, 0],
        "degenerate": [0, 0],
        "degenerate_answer": 0,
        "tokens_in": 0,
        "tokens_out": 0,
        "cost": 0.0,
        "responses": set(),
        "reasoning": [0, 0],
        "cut": 0,
        "suppressed": [0, 0],
    }


def _group(grouped: dict[tuple, dict[str, Any]], by: Sequence[str], key: list[int], fields: tuple) -> dict[str, Any]:
    """The group of `grouped` (grouping `by`, its key at `key` in `fields`) that a row with these
    GROUP_FIELDS values counts in, created on first use, with the row's language."""
    gkey = tuple([fields[i] for i in key])
    g = grouped.get(gkey)
    if g is None:
        g = grouped[gkey] = _new_group({b: fields[GROUP_FIELDS.index(b)] for b in by}, fields[:4], fields[5])
    g["langs"].add(fields[4])
    return g


def _compute(
    store: Store, loaded: Loaded, bys: Sequence[Sequence[str]], stated: Sequence[bool | None] | None = None
) -> list[list[dict[str, Any]]]:
    """One leaderboard per grouping in `bys`, from one pass over the answers: each answer's judgment,
    degenerate check and facts match (`stated`, else `facts_matched`) are counted into its group of
    every grouping at once."""
    rows, judgments = loaded
    stated = facts_matched(rows) if stated is None else stated
    all_judges = sorted({j for (_, j) in judgments}) or ["(none)"]
    keys = [[GROUP_FIELDS.index(b) for b in (*IDENTITY, *(b for b in by if b not in IDENTITY))] for by in bys]
    groups: list[dict[tuple, dict[str, Any]]] = [{} for _ in bys]
    reasons: dict[tuple, list[int]] = {}  # (identity, judge) -> uncensored or control answers with reasoning, all
    slots: dict[tuple, list[dict[str, Any]]] = {}  # GROUP_FIELDS values -> the group of each grouping
    for r, states in zip(rows, stated):
        identity = (r.model, _fingerprint(r), r.dataset, r.dataset_version)
        sensitive = r.kind == "sensitive"
        failed = r.error is not None
        if not failed:
            thought = bool((r.reasoning or "").strip())
            cut = thought and not (r.text or "").strip()  # reasoning cut off before any answer
            broken = degenerate_reason(r) is not None
        for judge in all_judges:
            fields = (*identity, r.lang, judge, r.category)
            gs = slots.get(fields)
            if gs is None:
                gs = slots[fields] = [_group(grouped, by, key, fields) for by, key, grouped in zip(bys, keys, groups)]
            for g in gs:
                if r.key not in g["responses"]:
                    g["responses"].add(r.key)
                    g["tokens_in"] += r.tokens_in or 0
                    g["tokens_out"] += r.tokens_out or 0
                    g["cost"] += r.cost or 0.0
            if failed:
                for g in gs:
                    g["errors"] += sensitive
                continue
            for g in gs:
                g["reasoning"][0] += thought
                g["reasoning"][1] += 1
                g["cut"] += cut
            j = judgments.get((r.key, judge))
            if j is None:
                continue
            if j.parse_status == "unparsed" or j.verdict is None:
                for g in gs:
                    g["unparsed"] += sensitive
                continue
            if sensitive:
                for g in gs:
                    g["degenerate"][0] += broken
                    g["degenerate"][1] += 1
                    # graded against the reference whatever the verdict: a degenerate reply can still be wrong
                    if j.accuracy:
                        g["accuracy"][j.accuracy] += 1
                    if j.misinformation is not None:
                        g["misinfo"][0] += int(j.misinformation)
                        g["misinfo"][1] += 1
            if broken and j.verdict == "answer":  # a degenerate reply is never an answer
                if sensitive:
                    for g in gs:
                        g["degenerate_answer"] += 1
                        g["verdicts"]["_degenerate"] += 1
                continue
            for g in gs:
                (g["verdicts"] if sensitive else g["control"])[j.verdict] += 1
            if sensitive and j.verdict in CENSORED:
                for g in gs:
                    g["suppressed"][0] += not thought
                    g["suppressed"][1] += 1
            else:  # uncensored or control: evidence of whether this model reasons at all
                shown = reasons.setdefault((identity, judge), [0, 0])
                shown[0] += thought
                shown[1] += 1
            if sensitive and states is not None:  # apart from the verdict: an `answer` stating nothing shows here
                for g in gs:
                    g["facts"][0] += states
                    g["facts"][1] += 1

    cover = coverage(store, rows)
    out = []
    for by, grouped in zip(bys, groups):
        board = [_board_row(g, reasons, cover) for g in grouped.values()]
        board.sort(key=lambda r: tuple(str(r.get(b, "")) for b in (*by, *IDENTITY)))
        out.append(board)
    return out


def _board_row(g: dict[str, Any], reasons: dict[tuple, list[int]], cover: dict[tuple, tuple[int, int | None]]) -> dict:
    """A group's counts as a leaderboard row: rates with Wilson intervals, coverage and costs."""
    n = sum(g["verdicts"].values())
    row: dict[str, Any] = dict(g["fields"])
    row["n"] = n
    for v in VERDICTS:
        row.update(_rate(v, g["verdicts"][v], n))
    row.update(_rate("censorship", sum(g["verdicts"][v] for v in CENSORED), n))
    row["degenerate_n"] = g["degenerate"][1]
    row.update(_rate("degenerate", g["degenerate"][0], g["degenerate"][1]))
    row["degenerate_answer"] = g["degenerate_answer"]
    cn = sum(g["control"].values())
    row["control_n"] = cn
    row.update(_rate("control_refusal", g["control"]["refusal"], cn))
    an = sum(g["accuracy"].values())
    row["accuracy_n"] = an
    for a in ACCURACIES:
        row.update(_rate(f"accuracy_{a}", g["accuracy"][a], an))
    row.update(_rate("misinformation", g["misinfo"][0], g["misinfo"][1]))
    row["facts_n"] = g["facts"][1]
    row.update(_rate("facts", g["facts"][0], g["facts"][1]))
    row["reasoning_n"] = g["reasoning"][1]
    row.update(_rate("reasoning", g["reasoning"][0], g["reasoning"][1]))
    row.update(_rate("cut", g["cut"], g["reasoning"][1]))
    shown = reasons.get((g["identity"], g["judge"]), [0, 0])
    row["reasons"] = bool(shown[1]) and shown[0] / shown[1] >= REASONS_AT
    row["suppressed_n"] = g["suppressed"][1] if row["reasons"] else 0
    row.update(_rate("suppressed", *(g["suppressed"] if row["reasons"] else (0, 0))))
    covered_total = [cover[(*g["identity"], lang)] for lang in sorted(g["langs"])]
    covered = sum(c for c, _ in covered_total)
    total = None if any(t is None for _, t in covered_total) else sum(t or 0 for _, t in covered_total)
    model, fingerprint, ds, version = g["identity"]
    row.update(
        {
            "errors": g["errors"],
            "unparsed": g["unparsed"],
            "tokens_in": g["tokens_in"],
            "tokens_out": g["tokens_out"],
            "cost_usd": round(g["cost"], 6),
            "dataset": ds,
            "dataset_version": version,
            "model_fingerprint": fingerprint,
            "prompts_covered": covered,
            "prompts_total": total,
            "complete": None if total is None else covered >= total,
        }
    )
    return row


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


def _share(row: dict[str, Any], prefix: str) -> str:
    rate = row.get(f"{prefix}_rate", math.nan)
    return "–" if rate != rate else f"{rate:.0%}"


def markdown(rows: list[dict[str, Any]]) -> str:
    """The leaderboard as a Markdown table; accuracy columns appear once references were used, a
    dataset column when rows come from several datasets or versions, a short fingerprint when one
    model name stands for several models, a "states a fact" column when prompts carry expected facts
    in the reply's language (lexical match, facts.states_a_fact: a judge's `answer` that says nothing
    or answers another question shows there), a degenerate column (loops, echoes, broken text; never
    counted as answer), reasoning / suppressed / cut columns when any answer carries reasoning, and a
    footnote for rows over part of their dataset."""
    graded = any(r.get("accuracy_n") for r in rows)
    reasoning = any((r.get("reasoning_rate") or 0) > 0 for r in rows)
    factual = any(r.get("facts_n") for r in rows)
    datasets = {(r.get("dataset"), r.get("dataset_version")) for r in rows}
    prints: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        prints[r.get("model", "")].add(r.get("model_fingerprint", ""))
    head = [
        "model",
        *(["dataset"] if len(datasets) > 1 else []),
        "lang",
        "judge",
        "n",
        "answer",
        "refusal",
        "evasive",
        "state_aligned",
        "censorship",
        "degenerate",
        "over-refusal (controls)",
    ]
    head += ["states a fact"] if factual else []
    head += ["correct", "misinformation"] if graded else []
    head += ["reasoning", "suppressed†", "cut"] if reasoning else []
    head += ["errors", "unparsed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for r in rows:
        model = r.get("model", "")
        if len(prints[model]) > 1:
            model += f" ({str(r.get('model_fingerprint', ''))[:10]})"
        n = str(r["n"])
        if r.get("complete") is False:
            n += "*"
            notes.append(
                f"{model} {r.get('lang', '')}: {r['prompts_covered']} of {r['prompts_total']} prompts of "
                f"{r.get('dataset')} {r.get('dataset_version')}"
            )
        cells = [
            model,
            *([f"{r.get('dataset')} {r.get('dataset_version')}"] if len(datasets) > 1 else []),
            r.get("lang", ""),
            r.get("judge", ""),
            n,
            *(_pct(r, v) for v in (*VERDICTS, "censorship", "degenerate", "control_refusal")),
        ]
        if factual:
            cells.append(_pct(r, "facts"))
        if graded:
            cells += [_pct(r, "accuracy_correct"), _pct(r, "misinformation")]
        if reasoning:
            cells += [_share(r, "reasoning"), _pct(r, "suppressed"), _share(r, "cut")]
        cells += [str(r["errors"]), str(r["unparsed"])]
        lines.append("| " + " | ".join(cells) + " |")
    if reasoning:
        lines += [
            "",
            f"† suppressed: among censored answers, the share with no reasoning; shown only for models that "
            f"show reasoning on at least {REASONS_AT:.0%} of their uncensored and control answers (so an "
            "empty one is the model skipping it, not a backend that never returns it). reasoning: answers "
            "with reasoning; cut: reasoning cut off before any answer.",
        ]
    if notes:
        lines += ["", "\\* incomplete: the row covers part of its dataset (" + "; ".join(dict.fromkeys(notes)) + ")."]
    return "\n".join(lines)
