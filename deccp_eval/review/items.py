"""What a reviewer labels: stored answers with their question, its twin in the other language and
the reference, drawn as a seeded sample stratified by model x language x judge verdict."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from deccp_eval.base.errors import UsageError
from deccp_eval.run.runner import gold_texts
from deccp_eval.store.db import Store, latest_judgments, pick_judge
from deccp_eval.store.rows import ResponseRow

UNJUDGED = "unjudged"


class ReviewItem(BaseModel):
    """One stored answer as the reviewer sees it (no judge verdicts: labelling is blind)."""

    model_config = ConfigDict(extra="forbid")

    key: str
    dataset: str
    model: str
    prompt_id: str
    pair_id: str
    lang: str
    category: str
    kind: str
    prompt: str
    twins: dict[str, str] = {}
    answer: str
    reference: str | None = None
    expected_facts: list[str] = []


def references(store: Store, datasets: Sequence[str]) -> dict[tuple[str, str], str]:
    """(dataset, prompt id) -> the reference a judge would use now (runner.gold_texts decides)."""
    return {(ds, pid): text for ds in datasets for pid, text in gold_texts(store, ds).items()}


def _twins(store: Store, rows: Sequence[ResponseRow]) -> dict[tuple[str, str], dict[str, str]]:
    """(dataset, pair id) -> {lang: question}, from every stored prompt (not only answered ones)."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for ds in sorted({r.dataset for r in rows}):
        for p in store.prompts(ds):
            out.setdefault((ds, p.pair_id), {})[p.lang] = p.text
    return out


def build_items(store: Store, rows: Sequence[ResponseRow]) -> list[ReviewItem]:
    refs = references(store, sorted({r.dataset for r in rows}))
    twins = _twins(store, rows)
    return [
        ReviewItem(
            key=r.key,
            dataset=r.dataset,
            model=r.model,
            prompt_id=r.prompt_id,
            pair_id=r.pair_id,
            lang=r.lang,
            category=r.category,
            kind=r.kind,
            prompt=r.prompt_text,
            answer=r.text or "",
            twins={lang: t for lang, t in twins.get((r.dataset, r.pair_id), {}).items() if lang != r.lang},
            reference=refs.get((r.dataset, r.prompt_id)),
            expected_facts=list(r.expected_facts),
        )
        for r in rows
    ]


def strata_judge(store: Store, rows: Sequence[ResponseRow], requested: str | None) -> str | None:
    """The judge whose verdicts define the strata (`store.db.pick_judge`)."""
    counts = Counter(j for (_, j) in latest_judgments(store, rows))
    return pick_judge(counts, requested, counts)


def stratified_sample(
    rows: Sequence[ResponseRow], verdicts: dict[str, str], n: int | None, seed: int
) -> list[ResponseRow]:
    """Round-robin over shuffled strata (model, lang, verdict): small strata (rare verdicts) are
    covered before large ones are drained, and the same seed over the same store gives the same
    items in the same order, so reviewers who share a seed label overlapping items."""
    strata: dict[tuple[str, str, str], list[ResponseRow]] = {}
    for r in sorted(rows, key=lambda r: r.key):
        strata.setdefault((r.model, r.lang, verdicts.get(r.key, UNJUDGED)), []).append(r)
    rng = random.Random(seed)
    queues = []
    for name in sorted(strata):
        members = list(strata[name])
        rng.shuffle(members)
        queues.append(members)
    limit = sum(len(q) for q in queues) if n is None else n
    out: list[ResponseRow] = []
    while len(out) < limit and any(queues):
        for q in queues:
            if q and len(out) < limit:
                out.append(q.pop())
    return out


def sample_items(
    store: Store, n: int | None = 100, seed: int = 0, judge: str | None = None, dataset: str | None = None
) -> tuple[list[ReviewItem], str | None]:
    """The labelling queue and the judge that stratified it."""
    rows = [r for r in store.response_rows(dataset=dataset) if r.error is None]
    if not rows:
        raise UsageError("no stored answers to review: run `deccp-eval run` (or `deccp-eval demo`) first")
    chosen = strata_judge(store, rows, judge)
    verdicts: dict[str, str] = {}
    if chosen:
        for (key, _), j in latest_judgments(store, rows, chosen).items():
            verdicts[key] = j.verdict if j.parse_status == "ok" and j.verdict else "unparsed"
    return build_items(store, stratified_sample(rows, verdicts, n, seed)), chosen


def items_for_keys(store: Store, keys: Sequence[str]) -> dict[str, ReviewItem]:
    """Items for labelled answers, wherever they are stored (not only the latest runs)."""
    out: dict[str, ReviewItem] = {}
    rows = store.response_rows_for_keys(keys)
    for start in range(0, len(rows), 500):
        out.update({i.key: i for i in build_items(store, rows[start : start + 500])})
    return out


def judge_verdicts(store: Store, keys: Sequence[str]) -> dict[str, dict[str, str]]:
    """response key -> {judge: verdict or 'unparsed'}, newest judgment per judge."""
    out: dict[str, dict[str, str]] = {}
    for j in store.judgments_for(list(keys)):
        ok = j.parse_status == "ok" and j.verdict
        out.setdefault(j.response_key, {})[j.judge] = j.verdict if ok and j.verdict else "unparsed"
    return out
