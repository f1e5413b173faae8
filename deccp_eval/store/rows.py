"""What the store's reads return: typed, immutable rows with their JSON columns decoded once.

Named tuples, built straight from SQLite's tuples: the report reads tens of thousands of answers, and
validating each (pydantic) would cost more than the query. Reading a column by name, `row["text"]`,
still works (code written against `sqlite3.Row`); new code reads attributes.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple


def _by_name(row: tuple[Any, ...], name: Any) -> Any:
    return getattr(row, name) if isinstance(name, str) else tuple.__getitem__(row, name)


class ResponseRow(NamedTuple):
    """A stored answer joined with its prompt and the newest run that included it (`Store.response_rows`)."""

    key: str
    model: str
    dataset: str
    prompt_id: str
    sample: int
    request: str  # the Request as JSON
    text: str | None
    reasoning: str | None
    finish_reason: str | None
    tokens_in: int | None
    tokens_out: int | None
    latency_s: float | None
    cost: float | None
    error: str | None
    created: str
    fingerprint: str
    provider_model: str | None
    system_fingerprint: str | None
    degenerate: str | None  # '' checked and fine; None: an error, or stored before the check
    # the prompt
    lang: str
    pair_id: str
    category: str
    kind: str
    prompt_text: str
    expected_facts: tuple[str, ...]
    # the newest run that included it (None where read by key, outside any run)
    dataset_version: str | None = None
    run_created: str | None = None
    run_ord: int | None = None
    run_id: str | None = None

    def __getitem__(self, key: Any) -> Any:  # row["name"] as on sqlite3.Row
        return _by_name(self, key)


# SELECT list in ResponseRow's field order, without expected_facts' decoding (see `response_row`).
RESPONSE_COLUMNS = (
    "r.key, r.model, r.dataset, r.prompt_id, r.sample, r.request, r.text, r.reasoning, r.finish_reason, "
    "r.tokens_in, r.tokens_out, r.latency_s, r.cost, r.error, r.created, r.fingerprint, r.provider_model, "
    "r.system_fingerprint, r.degenerate, p.lang, p.pair_id, p.category, p.kind, p.text, p.expected_facts"
)
FACTS_AT = ResponseRow._fields.index("expected_facts")


class FactsCache(dict[Any, tuple[str, ...]]):
    """expected_facts JSON -> its tuple, decoded once per distinct prompt for a whole read."""

    def __missing__(self, raw: str | None) -> tuple[str, ...]:
        value = tuple(json.loads(raw)) if raw else ()
        self[raw] = value
        return value


def response_row(values: tuple[Any, ...], facts: FactsCache) -> ResponseRow:
    """A ResponseRow from a tuple in RESPONSE_COLUMNS order (plus any run columns after it)."""
    return tuple.__new__(ResponseRow, (*values[:FACTS_AT], facts[values[FACTS_AT]], *values[FACTS_AT + 1 :]))


class JudgmentRow(NamedTuple):
    """A stored judgment (`Store.judgments_for`)."""

    key: str
    response_key: str
    judge: str
    template_hash: str
    verdict: str | None
    accuracy: str | None
    misinformation: bool | None
    rationale: str | None
    raw: str | None
    parse_status: str
    members: list[Any] | None  # a composite judge's member verdicts
    created: str
    reference_hash: str
    settings_hash: str
    confidence: float | None
    decided_by: str | None

    def __getitem__(self, key: Any) -> Any:  # row["name"] as on sqlite3.Row
        return _by_name(self, key)


JUDGMENT_COLUMNS = ", ".join(JudgmentRow._fields)
_MISINFO = JudgmentRow._fields.index("misinformation")
_MEMBERS = JudgmentRow._fields.index("members")


def judgment_row(values: tuple[Any, ...]) -> JudgmentRow:
    if values[_MISINFO] is None and values[_MEMBERS] is None:  # most judgments: nothing to decode
        return tuple.__new__(JudgmentRow, values)
    v = list(values)
    if v[_MISINFO] is not None:
        v[_MISINFO] = bool(v[_MISINFO])
    if v[_MEMBERS] is not None:
        v[_MEMBERS] = json.loads(v[_MEMBERS])
    return tuple.__new__(JudgmentRow, v)


class VerdictRow(NamedTuple):
    """A parsed verdict with the answer and question it is about (`Store.verdicts_of`)."""

    verdict: str
    text: str | None
    question: str
    lang: str
    pair_id: str

    def __getitem__(self, key: Any) -> Any:  # row["name"] as on sqlite3.Row
        return _by_name(self, key)


class RunRow(NamedTuple):
    """A stored run (`Store.runs`), its JSON columns decoded."""

    id: str
    created: str
    dataset: str
    dataset_version: str
    models: list[str]
    judges: list[str]
    config: dict[str, Any]
    status: str
    fingerprints: dict[str, str]

    def __getitem__(self, key: Any) -> Any:  # row["name"] as on sqlite3.Row
        return _by_name(self, key)


RUN_COLUMNS = ", ".join(RunRow._fields)


def run_row(values: tuple[Any, ...]) -> RunRow:
    i, created, dataset, version, models, judges, config, status, fingerprints = values
    return RunRow(
        i,
        created,
        dataset,
        version,
        json.loads(models or "[]"),
        json.loads(judges or "[]"),
        json.loads(config or "{}"),
        status,
        json.loads(fingerprints or "{}"),
    )
